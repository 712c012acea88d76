//! Pure parts of the deployment commands: rollout steps (`5,25,50,100`) and bake times
//! (`10m`, `1h30m`) as people type them, shares in basis points as people read them, and the
//! split of a revision that adds one variant with a given weight. The server validates plans
//! and splits fully; this turns what people type into requests and refuses the obvious
//! mistakes before any call.

use std::time::Duration;

use anyhow::{Result, bail};

/// Basis points of all traffic.
pub const FULL_BP: i32 = 10_000;

/// The canary share of each rollout step, in basis points, strictly increasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan(pub Vec<i32>);

/// The default steps of `deploy --canary`: 5, 25, 50 and 100 percent.
pub fn default_steps() -> StepPlan {
    StepPlan(vec![500, 2_500, 5_000, FULL_BP])
}

/// The default bake time of each step.
pub const DEFAULT_BAKE: Duration = Duration::from_secs(600);

/// Comma-separated percentages (`5,25,50,100`, `0.5%,10%,100%`: at most two decimals, each in
/// (0, 100], strictly increasing) as basis points.
pub fn parse_steps(s: &str) -> Result<StepPlan, String> {
    let mut out: Vec<i32> = Vec::new();
    for (i, part) in s.split(',').enumerate() {
        let p = part.trim().trim_end_matches('%').trim();
        let v: f64 = p
            .parse()
            .map_err(|_| format!("step {} ({part:?}) is not a percentage", i + 1))?;
        let bp = (v * 100.0).round();
        if !v.is_finite() || (v * 100.0 - bp).abs() > 1e-6 {
            return Err(format!(
                "step {} ({part:?}): use at most two decimals",
                i + 1
            ));
        }
        if !(1.0..=f64::from(FULL_BP)).contains(&bp) {
            return Err(format!(
                "step {} ({part:?}) must be more than 0 and at most 100 percent",
                i + 1
            ));
        }
        let bp = bp as i32;
        if let Some(&prev) = out.last()
            && bp <= prev
        {
            return Err(format!(
                "step {} ({part:?}) must be larger than the step before ({})",
                i + 1,
                pct(prev)
            ));
        }
        out.push(bp);
    }
    Ok(StepPlan(out))
}

/// A duration such as `10m`, `90s`, `1h30m`, `500ms`, `2d` or `0` (whole numbers with the
/// units ms, s, m, h and d, largest first or in any order).
pub fn parse_bake(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("{s:?} is not a duration such as 10m, 90s, 1h30m or 500ms");
    let mut total = Duration::ZERO;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || letters == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match &rest[digits..digits + letters] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3_600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        let part = u32::try_from(n)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[digits + letters..];
    }
    Ok(total)
}

/// `1h30m`, `10m`, `45s`, `500ms`, `0s`: the inverse of [`parse_bake`].
pub fn duration_text(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let mut out = String::new();
    let mut secs = d.as_secs();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    let ms = d.subsec_millis();
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

/// A protobuf duration as [`duration_text`] (`-` when absent or negative).
pub fn pb_duration_text(d: &Option<prost_types::Duration>) -> String {
    match d {
        Some(d) if d.seconds >= 0 && d.nanos >= 0 => {
            duration_text(Duration::new(d.seconds as u64, d.nanos as u32))
        }
        _ => "-".into(),
    }
}

/// A duration as protobuf.
pub fn to_pb_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Basis points as a percentage: `5%`, `0.5%`, `12.25%`.
pub fn pct(bp: i32) -> String {
    if bp % 100 == 0 {
        format!("{}%", bp / 100)
    } else {
        let s = format!("{:.2}", f64::from(bp) / 100.0);
        format!("{}%", s.trim_end_matches('0'))
    }
}

/// One variant of a split: its name, the version it serves and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Variant name.
    pub name: String,
    /// `registeredModels/{m}/versions/{v}` or `registeredModels/{m}@{alias}`.
    pub model_version: String,
    /// Basis points.
    pub weight_bp: i32,
}

/// The split after giving `new` its weight: with all traffic it is alone; otherwise the other
/// variants of `current` (any of the same name is replaced) share the rest in proportion to
/// their weights, the rounding remainder going to the heaviest. Fails when nothing could take
/// the rest.
pub fn with_variant(current: &[Share], new: Share) -> Result<Vec<Share>> {
    if !(1..=FULL_BP).contains(&new.weight_bp) {
        bail!(
            "the weight must be 1..={FULL_BP} basis points (got {})",
            new.weight_bp
        );
    }
    if new.weight_bp == FULL_BP {
        return Ok(vec![new]);
    }
    let mut others: Vec<Share> = current
        .iter()
        .filter(|s| s.name != new.name)
        .cloned()
        .collect();
    let rest = FULL_BP - new.weight_bp;
    let total: i64 = others.iter().map(|s| i64::from(s.weight_bp.max(0))).sum();
    if total == 0 {
        bail!(
            "--weight {} leaves {} for other variants, but the deployment has no other \
             variant with traffic (deploy with all traffic first, or give --weight {FULL_BP})",
            new.weight_bp,
            pct(rest)
        );
    }
    for s in &mut others {
        s.weight_bp = (i64::from(s.weight_bp.max(0)) * i64::from(rest) / total) as i32;
    }
    let given: i32 = others.iter().map(|s| s.weight_bp).sum();
    if let Some(heaviest) = others.iter_mut().rev().max_by_key(|s| s.weight_bp) {
        heaviest.weight_bp += rest - given;
    }
    others.push(new);
    Ok(others)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_as_basis_points() {
        assert_eq!(
            parse_steps("5,25,50,100").unwrap(),
            StepPlan(vec![500, 2_500, 5_000, 10_000])
        );
        assert_eq!(
            parse_steps(" 0.5% , 12.25%,100 ").unwrap(),
            StepPlan(vec![50, 1_225, 10_000])
        );
        assert_eq!(parse_steps("10").unwrap(), StepPlan(vec![1_000]));
        assert_eq!(default_steps(), parse_steps("5,25,50,100").unwrap());
    }

    #[test]
    fn bad_steps_say_which() {
        for (s, needle) in [
            ("", "step 1"),
            ("5,,100", "step 2"),
            ("5,x", "not a percentage"),
            ("0,100", "more than 0"),
            ("5,101", "at most 100"),
            ("-5,100", "more than 0"),
            ("50,25", "larger than the step before (50%)"),
            ("5,5", "larger"),
            ("0.125,100", "two decimals"),
            ("NaN", "step 1"),
        ] {
            let e = parse_steps(s).unwrap_err();
            assert!(e.contains(needle), "{s:?}: {e}");
        }
    }

    #[test]
    fn bakes_parse() {
        let m = |n: u64| Duration::from_secs(60 * n);
        assert_eq!(parse_bake("10m").unwrap(), m(10));
        assert_eq!(parse_bake("1h30m").unwrap(), m(90));
        assert_eq!(parse_bake("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_bake("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_bake("1d").unwrap(), m(24 * 60));
        assert_eq!(parse_bake("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_bake("1m1s1ms").unwrap(),
            Duration::from_millis(61_001)
        );
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "10 m",
            "-1m",
            "ten",
            "1h-",
            "99999999999h",
        ] {
            assert!(parse_bake(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_print_as_they_parse() {
        for s in ["10m", "1h30m", "1m30s", "500ms", "2d3h", "1m1s1ms", "0s"] {
            let d = parse_bake(s).unwrap_or(Duration::ZERO);
            assert_eq!(duration_text(d), s);
        }
        assert_eq!(duration_text(Duration::from_secs(90)), "1m30s");
        assert_eq!(
            pb_duration_text(&Some(to_pb_duration(Duration::from_secs(600)))),
            "10m"
        );
        assert_eq!(pb_duration_text(&None), "-");
    }

    proptest::proptest! {
        #[test]
        fn durations_round_trip(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            let text = duration_text(d);
            let back = if text == "0s" { Duration::ZERO } else { parse_bake(&text).unwrap() };
            proptest::prop_assert_eq!(back, d);
        }

        #[test]
        fn splits_always_sum_to_all_traffic(
            weights in proptest::collection::vec(0i32..=10_000, 1..5),
            new in 1i32..=10_000,
        ) {
            let current: Vec<Share> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| share(&format!("v{i}"), *w))
                .collect();
            let new_share = share("new", new);
            match with_variant(&current, new_share.clone()) {
                Ok(split) => {
                    proptest::prop_assert_eq!(split.iter().map(|s| s.weight_bp).sum::<i32>(), FULL_BP);
                    proptest::prop_assert!(split.iter().all(|s| s.weight_bp >= 0));
                    proptest::prop_assert_eq!(split.last(), Some(&new_share));
                }
                Err(_) => proptest::prop_assert!(weights.iter().all(|w| *w == 0) && new < FULL_BP),
            }
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(pct(500), "5%");
        assert_eq!(pct(10_000), "100%");
        assert_eq!(pct(50), "0.5%");
        assert_eq!(pct(1_225), "12.25%");
        assert_eq!(pct(0), "0%");
    }

    fn share(name: &str, w: i32) -> Share {
        Share {
            name: name.into(),
            model_version: format!("registeredModels/m/versions/{}", name.len()),
            weight_bp: w,
        }
    }

    #[test]
    fn a_weighted_variant_takes_its_share_from_the_others() {
        let current = [share("main", 10_000)];
        assert_eq!(
            with_variant(&current, share("b", 1_000)).unwrap(),
            vec![share("main", 9_000), share("b", 1_000)]
        );
        // Replacing a variant of the same name; the rest split 2:1 with the remainder to the
        // heaviest.
        let current = [share("a", 6_000), share("b", 3_000), share("c", 1_000)];
        let split = with_variant(&current, share("c", 2_500)).unwrap();
        assert_eq!(
            split,
            vec![share("a", 5_000), share("b", 2_500), share("c", 2_500)]
        );
        let split =
            with_variant(&[share("a", 5_000), share("b", 5_000)], share("n", 3_333)).unwrap();
        assert_eq!(
            split.iter().map(|s| s.weight_bp).collect::<Vec<_>>(),
            [3_334, 3_333, 3_333]
        );
        // All traffic: alone.
        assert_eq!(
            with_variant(&current, share("x", FULL_BP)).unwrap(),
            vec![share("x", FULL_BP)]
        );
    }

    #[test]
    fn nothing_to_take_the_rest_is_an_error() {
        let e = with_variant(&[], share("a", 5_000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no other variant"), "{e}");
        let e = with_variant(&[share("a", 10_000)], share("a", 5_000)).unwrap_err();
        assert!(e.to_string().contains("50%"), "{e}");
        assert!(with_variant(&[], share("a", 0)).is_err());
    }
}
