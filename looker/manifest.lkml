# meshlook LookML project.
# The constants below are the only per-installation settings. Edit them here, or import this project
# into your own and override them there (every constant is exported for that reason).

project_name: "meshlook"

constant: CONNECTION_NAME {
  value: "meshlook"
  export: override_optional
}

# Database and schema the meshlook collector loads into (MESHLOOK_SNOWFLAKE_DATABASE / _SCHEMA;
# docs/snowflake.md sets up MESHLOOK.TRAFFIC).
constant: DATABASE {
  value: "MESHLOOK"
  export: override_optional
}

constant: SCHEMA {
  value: "TRAFFIC"
  export: override_optional
}

# Cache ceiling when the load trigger cannot be evaluated; normally the trigger refreshes sooner.
constant: MAX_CACHE_AGE {
  value: "24 hours"
  export: override_optional
}
