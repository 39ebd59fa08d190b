// Allure 3 configuration for cdc-spec: the report of a run IS the documentation.
//
// A plain exported object (no import of "allure" needed). Built by `python -m pytest_cdc.report`
// (pytest_cdc/report/html.py), which runs `allure generate --config allurerc.mjs` and then strips
// the analytics tag that the awesome plugin always emits, so the single HTML file opens offline
// from disk.
//
// Field names checked against the installed sources (allure 3.18.0):
//   top level: node_modules/@allurereport/plugin-api/dist/config.d.ts (Config) and the
//              supportedFields list in node_modules/@allurereport/core/dist/config.js
//   awesome:   node_modules/@allurereport/plugin-awesome/dist/model.d.ts (AwesomeOptions)
//   categories: node_modules/@allurereport/core-api/dist/categories.d.ts (CategoryRule,
//              ObjectMatcher) and normalizeCategoriesConfig in categories.js. The first matching
//              rule wins; Allure always appends its two defaults ("Product errors" = failed,
//              "Test errors" = broken) after the rules below.

export default {
  name: "cdc-spec — executable CDC specification",
  output: "reports/html",
  plugins: {
    awesome: {
      options: {
        singleFile: true,
        reportLanguage: "en",
        // Epic = source, feature = approach, story = user story (see DESIGN.md).
        groupBy: ["epic", "feature", "story"],
        // Steps are the specification: show them open.
        stepTreeExpansion: "expanded",
      },
    },
  },
  categories: {
    rules: [
      {
        id: "infrastructure-broken",
        name: "Infrastructure broken",
        matchers: {
          statuses: ["broken", "failed"],
          message:
            /StackStartError|WaitTimeout.*(Kafka|Connect|PostgreSQL|MariaDB|connector)|Connection refused|could not connect/i,
        },
        expand: true,
      },
      {
        id: "integrity-failure",
        name: "Integrity failure",
        matchers: {
          statuses: ["failed", "broken"],
          message: /IntegrityError|integrity|checksum|per-key diff/i,
        },
        expand: true,
      },
      {
        id: "lag-limit-breached",
        name: "Lag limit breached",
        matchers: {
          statuses: ["failed", "broken"],
          message: /lag .*(exceeds|breached|above)|LagLimit/i,
        },
        expand: true,
      },
      // Allure's defaults, spelled out so the report's taxonomy is visible here. These names map
      // to Allure's built-in default ids, so they merge with (not duplicate) the appended defaults.
      { name: "Product errors", matchers: { statuses: ["failed"] } },
      { name: "Test errors", matchers: { statuses: ["broken"] } },
    ],
  },
};
