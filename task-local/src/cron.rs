//! EventBridge's `cron(minutes hours day-of-month month day-of-week year)`,
//! for firing a function's cron schedules locally: `*`, `?`, numbers and
//! names, lists, ranges and `/` steps. `L`, `W` and `#` are not read (such a
//! schedule is not fired, and task-local says so).

/// A parsed expression: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Option<Vec<bool>>,
    months: Vec<bool>,
    weekdays: Option<Vec<bool>>,
    years: Option<(u32, u32, u32)>,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The values `field` allows from `min` to `max` (names count from `min`).
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Option<Vec<bool>> {
    let value = |s: &str| -> Option<u32> {
        s.parse().ok().or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(s)).map(|i| i as u32 + min))
    };
    let mut allowed = vec![false; max as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (lo, hi) = match range {
            "*" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if part.contains('/') => (value(r)?, max),
                None => (value(r)?, value(r)?),
            },
        };
        if lo < min || hi > max || lo > hi {
            return None;
        }
        for v in (lo..=hi).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Some(allowed)
}

impl Cron {
    /// `cron(...)`, or `None` when it is not one this reads.
    pub(crate) fn parse(expression: &str) -> Option<Cron> {
        let inner = expression.trim().strip_prefix("cron(")?.strip_suffix(')')?;
        let f: Vec<&str> = inner.split_whitespace().collect();
        let [mi, h, dom, mo, dow, y] = f.as_slice() else { return None };
        let optional = |t: &str, min, max, names: &[&str]| if t == "?" { Some(None) } else { field(t, min, max, names).map(Some) };
        let years = match *y {
            "*" => None,
            y => {
                let (range, step) = y.split_once('/').map_or((y, 1), |(r, s)| (r, s.parse().unwrap_or(1)));
                let (a, b) = range.split_once('-').map_or((range, range), |(a, b)| (a, b));
                Some((a.parse().ok()?, b.parse().ok()?, step))
            }
        };
        let cron = Cron {
            minutes: field(mi, 0, 59, &[])?,
            hours: field(h, 0, 23, &[])?,
            days: optional(dom, 1, 31, &[])?,
            months: field(mo, 1, 12, &MONTHS)?,
            weekdays: optional(dow, 1, 7, &WEEKDAYS)?,
            years,
        };
        (cron.days.is_none() != cron.weekdays.is_none()).then_some(cron)
    }

    /// The first minute after `after_ms` (epoch ms, UTC) that matches,
    /// looking at most five years ahead.
    pub(crate) fn next_after(&self, after_ms: u64) -> Option<u64> {
        let mut minute = after_ms / 60_000 + 1;
        let last = minute + 5 * 366 * 1440;
        while minute < last {
            let days = (minute / 1440) as i64;
            let (y, m, d) = civil(days);
            let in_day = minute % 1440;
            let weekday = ((days + 4).rem_euclid(7) + 1) as usize; // 1 = Sunday, as EventBridge counts
            let day_ok = match (&self.days, &self.weekdays) {
                (Some(dom), _) => dom[d as usize],
                (None, Some(dow)) => dow[weekday],
                (None, None) => true,
            };
            let year_ok = self.years.is_none_or(|(a, b, step)| (a..=b).contains(&y) && (y - a) % step.max(1) == 0);
            if !(self.months[m as usize] && day_ok && year_ok) {
                minute = (days as u64 + 1) * 1440; // the next day
                continue;
            }
            if self.hours[(in_day / 60) as usize] && self.minutes[(in_day % 60) as usize] {
                return Some(minute * 60_000);
            }
            minute += 1;
        }
        None
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
pub(crate) fn civil(days: i64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    ((yoe + era * 400 + i64::from(m <= 2)) as u32, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-27 (a Friday) 10:14:56.789 UTC
    const NOW: u64 = 1_795_774_496_789;
    const MIN: u64 = 60_000;

    #[test]
    fn next_times() {
        let at_8 = Cron::parse("cron(0 8 * * ? *)").expect("parses");
        assert_eq!(at_8.next_after(NOW), Some(1_795_852_800_000)); // 2026-11-28 08:00
        let quarter = Cron::parse("cron(0/15 * * * ? *)").expect("parses");
        assert_eq!(quarter.next_after(NOW), Some(1_795_774_500_000)); // 10:15
        let monday = Cron::parse("cron(30 9 ? * MON *)").expect("parses");
        assert_eq!(monday.next_after(NOW), Some(1_796_031_000_000)); // 2026-11-30 09:30, a Monday
        let weekdays = Cron::parse("cron(0 12 ? * MON-FRI *)").expect("parses");
        assert_eq!(weekdays.next_after(NOW), Some(1_795_780_800_000)); // today, Friday, 12:00
        let every = Cron::parse("cron(* * * * ? *)").expect("parses");
        assert_eq!(every.next_after(NOW), Some((NOW / MIN + 1) * MIN));
    }

    #[test]
    fn what_it_does_not_read() {
        for e in ["cron(0 8 * * *)", "cron(0 8 L * ? *)", "cron(0 8 ? * 6#3 *)", "cron(0 8 * * MON *)", "cron(61 8 * * ? *)", "rate(1 hour)"] {
            assert_eq!(Cron::parse(e), None, "{e}");
        }
    }
}
