//! Schedule expressions, checked at compile time: EventBridge's `rate(...)`,
//! `cron(...)` (six fields) and `at(yyyy-mm-ddThh:mm:ss)`.

/// `Ok` for an expression EventBridge accepts, else what is wrong with it.
pub(crate) fn check(expression: &str) -> Result<(), String> {
    let e = expression.trim();
    if let Some(inner) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let (n, unit) = inner.trim().split_once(' ').ok_or("`rate(...)` takes a number and a unit, e.g. `rate(5 minutes)`")?;
        let n: u64 = n.parse().map_err(|_| format!("`rate({inner})`: {n:?} is not a whole number"))?;
        let (one, many) = match unit.trim() {
            "minute" | "minutes" => ("minute", "minutes"),
            "hour" | "hours" => ("hour", "hours"),
            "day" | "days" => ("day", "days"),
            other => return Err(format!("`rate({inner})`: the unit is minute(s), hour(s) or day(s), not {other:?}")),
        };
        return match (n, unit.trim()) {
            (0, _) => Err(format!("`rate({inner})`: the rate must be at least 1")),
            (1, u) if u != one => Err(format!("`rate({inner})`: EventBridge wants `rate(1 {one})`")),
            (n, u) if n > 1 && u != many => Err(format!("`rate({inner})`: EventBridge wants `rate({n} {many})`")),
            _ => Ok(()),
        };
    }
    if let Some(inner) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!("`cron({inner})` has {} fields; EventBridge's cron has six: minutes hours day-of-month month day-of-week year", fields.len()));
        }
        if fields[2] != "?" && fields[4] != "?" {
            return Err(format!("`cron({inner})`: one of day-of-month and day-of-week must be `?`"));
        }
        return Ok(());
    }
    if let Some(inner) = e.strip_prefix("at(").and_then(|r| r.strip_suffix(')')) {
        let ok = inner.len() == 19 && inner.as_bytes().iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        });
        return if ok { Ok(()) } else { Err(format!("`at({inner})`: write the time as yyyy-mm-ddThh:mm:ss")) };
    }
    Err(format!("{expression:?} is not `rate(...)`, `cron(...)` or `at(...)`"))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn expressions() {
        for ok in ["rate(1 hour)", "rate(5 minutes)", "cron(0 8 * * ? *)", "cron(0/15 * ? * MON-FRI *)", "at(2026-12-01T09:00:00)"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in ["rate(1 hours)", "rate(5 minute)", "rate(0 days)", "rate(5 weeks)", "cron(0 8 * * *)", "cron(0 8 * * 1 *)", "at(2026-12-01 09:00)", "every hour"] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
