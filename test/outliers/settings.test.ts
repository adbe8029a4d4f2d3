// Outlier settings: defaults, every threshold settable and documented, and bad values refused with a
// message naming the setting.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { THRESHOLD_SETTINGS, outlierSettings } from "../../collector/outliers/settings.ts";
import { DEFAULT_THRESHOLDS } from "../../shared/outliers.ts";

describe("outlier settings", () => {
  it("default to the documented thresholds, a settle time of one load interval plus a minute, both grains, no webhook", () => {
    const s = outlierSettings({}, 10);
    expect(s.thresholds).toEqual(DEFAULT_THRESHOLDS);
    expect(s).toMatchObject({ enabled: true, intervalMs: 300_000, settleMs: 70_000, grains: ["edge", "service"], webhook: undefined, metricIdentities: false });
  });

  it("read every threshold from MESHLOOK_OUTLIER_<NAME>, and the docs name each one", () => {
    const docs = readFileSync(new URL("../../docs/outliers.md", import.meta.url), "utf8");
    for (const t of THRESHOLD_SETTINGS) {
      expect(docs, t.env).toContain(t.env.replace("MESHLOOK_OUTLIER_", ""));
      const value = t.key === "reporter" ? "source" : t.key === "trafficDropRatio" ? 0.5 : 7;
      expect(outlierSettings({ [t.env]: String(value) }, 10).thresholds[t.key], t.env).toBe(value);
    }
  });

  it("refuse bad values, naming each setting", () => {
    const bad = () =>
      outlierSettings(
        {
          MESHLOOK_OUTLIER_ERROR_MIN_REQUESTS: "many",
          MESHLOOK_OUTLIER_GRAINS: "edge,pod",
          MESHLOOK_OUTLIER_TRAFFIC_DROP_RATIO: "2",
          MESHLOOK_OUTLIER_WEBHOOK_URL: "ftp://x",
          MESHLOOK_OUTLIER_WEBHOOK_FORMAT: "teams",
          MESHLOOK_OUTLIERS: "maybe",
        },
        10,
      );
    expect(bad).toThrow(
      /MESHLOOK_OUTLIER_ERROR_MIN_REQUESTS[\s\S]*MESHLOOK_OUTLIER_TRAFFIC_DROP_RATIO[\s\S]*MESHLOOK_OUTLIER_GRAINS[\s\S]*MESHLOOK_OUTLIER_WEBHOOK_URL[\s\S]*MESHLOOK_OUTLIER_WEBHOOK_FORMAT[\s\S]*MESHLOOK_OUTLIERS/,
    );
  });
});
