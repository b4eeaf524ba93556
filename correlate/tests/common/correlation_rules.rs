//! The rule set of the correlation model tests: five detection rules and ten correlations
//! covering every correlation type, a chain and a correlation without `group-by`.

use std::sync::Arc;

use cairn_correlate::correlation::{CorrelationOptions, Correlations};
use cairn_correlate::{CompileOptions, FieldMapping, Matcher, parse_rules_str};

pub const DETECTION: &str = r#"
title: rule zero
id: r0-id
name: r0
logsource: {product: test}
detection:
  sel:
    kind: [r0, multi]
  condition: sel
---
title: rule one
id: r1-id
name: r1
logsource: {product: test}
detection:
  sel:
    kind: [r1, multi]
  condition: sel
---
title: rule two
id: r2-id
name: r2
logsource: {product: test}
detection:
  sel:
    kind: r2
  condition: sel
---
title: rule three
id: r3-id
name: r3
logsource: {product: test}
detection:
  sel:
    kind: r3
  condition: sel
---
title: rule four alone
id: r4-id
name: r4
level: low
logsource: {product: test}
detection:
  sel:
    kind: r4
  condition: sel
"#;

pub const CORRELATIONS: &str = r#"
title: count
id: c-count
name: c_count
generate: true
correlation:
  type: event_count
  rules: [r0, r1]
  group-by: [grp]
  timespan: 10s
  condition: {gte: 3}
---
title: count range
id: c-range
correlation:
  type: event_count
  rules: [r0]
  group-by: [grp]
  timespan: 10s
  condition: {gte: 2, lte: 3}
---
title: values
id: c-value
correlation:
  type: value_count
  rules: [r1, r2]
  group-by: [grp]
  timespan: 10s
  condition: {field: val, gte: 3}
---
title: few values
id: c-value-close
correlation:
  type: value_count
  rules: [r2]
  group-by: [grp]
  timespan: 10s
  condition: {field: val, lt: 3}
---
title: temporal all
id: c-temporal
correlation:
  type: temporal
  rules: [r0, r2, r3]
  group-by: [grp]
  timespan: 10s
---
title: temporal two of three
id: c-temporal2
correlation:
  type: temporal
  rules: [r1, r2, r3]
  group-by: [grp]
  timespan: 10s
  condition: {gte: 2}
---
title: ordered
id: c-ordered
correlation:
  type: temporal_ordered
  rules: [r0, r1, r2]
  group-by: [grp]
  timespan: 10s
---
title: absence
id: c-absence
correlation:
  type: temporal
  rules: [r2, r3]
  group-by: [grp]
  timespan: 10s
  condition: r2 and not r3
---
title: chain
id: c-chain
correlation:
  type: temporal_ordered
  rules: [c_count, r3]
  group-by: [grp]
  timespan: 20s
---
title: no group
id: c-nogroup
correlation:
  type: event_count
  rules: [r3]
  timespan: 5s
  condition: {gte: 4}
"#;

pub struct Setup {
    pub matcher: Matcher,
    pub correlations: Arc<Correlations>,
}

pub fn setup() -> Setup {
    let mut report = parse_rules_str(DETECTION, "detection.yml");
    report.extend(parse_rules_str(CORRELATIONS, "correlations.yml"));
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let (matcher, rejected) = Matcher::compile(&report.loaded, &CompileOptions::default());
    assert!(rejected.is_empty(), "{rejected:?}");
    let (correlations, rejected) = Correlations::build(
        &report.loaded,
        &matcher,
        &FieldMapping::new(),
        &CorrelationOptions::default(),
    );
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(correlations.len(), 10);
    Setup {
        matcher,
        correlations: Arc::new(correlations),
    }
}
