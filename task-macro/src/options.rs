//! `#[task(name = "...", function = "...", capture_response = bool, retries = N,
//! retry_backoff = "1s", retry_backoff_max = "10m", retry_jitter = bool,
//! concurrency = N, concurrency_key = "arg", rate_limit = "100/m",
//! rate_limit_key = "arg", timeout = "30s", schedule = "rate(1 hour)",
//! schedule_args = (..), idempotency_key = "arg.field" | key_fn,
//! idempotency_window = "24h")]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitBool, LitInt, LitStr, Meta, Token};

const KNOWN: &str = "`name`, `function`, `capture_response`, `retries`, `retry_backoff`, `retry_backoff_max`, `retry_jitter`, \
                     `concurrency`, `concurrency_key`, `rate_limit`, `rate_limit_key`, `timeout`, `schedule`, `schedule_args`, \
                     `idempotency_key`, `idempotency_window`";

/// The parsed options, each with the literal it came from.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) function: Option<LitStr>,
    pub(crate) capture_response: Option<LitBool>,
    pub(crate) retries: Option<LitInt>,
    /// The task's own time limit, e.g. `"30s"`.
    pub(crate) timeout: Option<LitStr>,
    /// The first retry's gap, e.g. `"1s"`.
    pub(crate) retry_backoff: Option<LitStr>,
    /// The longest gap, e.g. `"10m"`.
    pub(crate) retry_backoff_max: Option<LitStr>,
    pub(crate) retry_jitter: Option<LitBool>,
    pub(crate) concurrency: Option<LitInt>,
    /// The parameter whose value keys the concurrency limit.
    pub(crate) concurrency_key: Option<LitStr>,
    /// `"N/s"`, `"N/m"` or `"N/h"`.
    pub(crate) rate_limit: Option<LitStr>,
    pub(crate) rate_limit_key: Option<LitStr>,
    pub(crate) schedule: Option<LitStr>,
    /// The arguments of each scheduled run: any expression, typed by the compiler.
    pub(crate) schedule_args: Option<Expr>,
    /// Where the idempotency key comes from.
    pub(crate) idempotency_key: Option<KeyOption>,
    /// How long a key is one call, e.g. `"24h"`.
    pub(crate) idempotency_window: Option<LitStr>,
}

/// `idempotency_key = "order.id"` (an argument, or a field inside it) or
/// `idempotency_key = order_key` (a function of the arguments, by reference).
pub(crate) enum KeyOption {
    Arg(LitStr),
    Function(syn::Path),
}

/// Parse the attribute's arguments, collecting every error.
pub(crate) fn parse(args: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
    let mut opts = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return opts;
        }
    };
    for meta in metas {
        let Meta::NameValue(nv) = &meta else {
            errors.push(syn::Error::new_spanned(&meta, format!("expected `option = value`, one of: {KNOWN}")));
            continue;
        };
        let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let lit = match &nv.value {
            Expr::Lit(ExprLit { lit, .. }) => Some(lit),
            _ => None,
        };
        macro_rules! set {
            ($field:ident, $variant:ident, $what:literal) => {{
                match lit {
                    Some(Lit::$variant(l)) if opts.$field.is_none() => opts.$field = Some(l.clone()),
                    Some(Lit::$variant(_)) => errors.push(syn::Error::new_spanned(&nv.path, concat!("`", stringify!($field), "` set multiple times"))),
                    _ => errors.push(syn::Error::new_spanned(&nv.value, concat!("`", stringify!($field), "` takes ", $what))),
                }
            }};
        }
        match key.as_str() {
            "name" => set!(name, Str, "a string literal"),
            "function" => set!(function, Str, "a string literal: a function name or ARN"),
            "capture_response" => set!(capture_response, Bool, "`true` or `false`"),
            "retries" => set!(retries, Int, "a number of retries, 0 to 100"),
            "retry_backoff" => set!(retry_backoff, Str, "a duration: `\"100ms\"`, `\"1s\"`, `\"10m\"`"),
            "retry_backoff_max" => set!(retry_backoff_max, Str, "a duration: `\"30s\"`, `\"10m\"`, `\"1h\"`"),
            "retry_jitter" => set!(retry_jitter, Bool, "`true` or `false`"),
            "concurrency" => set!(concurrency, Int, "a number of bodies at once, at least 1"),
            "concurrency_key" => set!(concurrency_key, Str, "the name of an argument, like \"account\""),
            "rate_limit" => set!(rate_limit, Str, "a rate: `\"10/s\"`, `\"100/m\"`, `\"1000/h\"`"),
            "rate_limit_key" => set!(rate_limit_key, Str, "the name of an argument, like \"to\""),
            "timeout" => set!(timeout, Str, "a duration: `\"500ms\"`, `\"30s\"`, `\"10m\"`"),
            "schedule" => set!(schedule, Str, "a string literal: `rate(...)`, `cron(...)` or `at(...)`"),
            "schedule_args" if opts.schedule_args.is_some() => {
                errors.push(syn::Error::new_spanned(&nv.path, "`schedule_args` set multiple times"));
            }
            "schedule_args" => opts.schedule_args = Some(nv.value.clone()),
            "idempotency_key" if opts.idempotency_key.is_some() => {
                errors.push(syn::Error::new_spanned(&nv.path, "`idempotency_key` set multiple times"));
            }
            "idempotency_key" => match &nv.value {
                Expr::Lit(ExprLit { lit: Lit::Str(l), .. }) => opts.idempotency_key = Some(KeyOption::Arg(l.clone())),
                Expr::Path(p) if p.qself.is_none() => opts.idempotency_key = Some(KeyOption::Function(p.path.clone())),
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "`idempotency_key` takes an argument's name (\"order_id\", or \"order.id\" for a field inside it) \
                     or a function of the arguments (`order_key`, called with a reference to each)",
                )),
            },
            "idempotency_window" => set!(idempotency_window, Str, "a duration: `\"30m\"`, `\"24h\"`"),
            _ => {
                let path = &nv.path;
                let shown = quote::quote!(#path).to_string().replace(' ', "");
                errors.push(syn::Error::new_spanned(path, format!("unknown option `{shown}`, expected one of: {KNOWN}")));
            }
        }
    }
    if let Some(name) = &opts.name
        && name.value().trim().is_empty() {
            errors.push(syn::Error::new_spanned(name, "`name` must not be empty"));
        }
    if let Some(function) = &opts.function
        && function.value().trim().is_empty() {
            errors.push(syn::Error::new_spanned(function, "`function` must not be empty"));
        }
    if let Some(schedule) = &opts.schedule
        && let Err(why) = crate::schedule::check(&schedule.value())
    {
        errors.push(syn::Error::new_spanned(schedule, why));
    }
    if let (Some(args), None) = (&opts.schedule_args, &opts.schedule) {
        errors.push(syn::Error::new_spanned(args, "`schedule_args` needs `schedule = \"...\"`"));
    }
    if let Some(timeout) = &opts.timeout
        && let Err(why) = timeout_ms(&timeout.value())
    {
        errors.push(syn::Error::new_spanned(timeout, why));
    }
    if let Some(retries) = &opts.retries {
        match retries.base10_parse::<u8>() {
            Ok(n) if n <= MAX_RETRIES => {}
            _ => errors.push(syn::Error::new_spanned(
                retries,
                "`retries` must be 0 to 100: Lambda's own two, and the rest sent again by the runtime with backoff",
            )),
        }
    }
    for (lit, what) in [(&opts.retry_backoff, "retry_backoff"), (&opts.retry_backoff_max, "retry_backoff_max")] {
        if let Some(lit) = lit
            && let Err(why) = duration_ms(&lit.value())
        {
            errors.push(syn::Error::new_spanned(lit, format!("`{what}`: {why}")));
        }
    }
    if let Some(n) = &opts.concurrency
        && !matches!(n.base10_parse::<u32>(), Ok(n) if n >= 1)
    {
        errors.push(syn::Error::new_spanned(n, "`concurrency` must be at least 1"));
    }
    if let Some(rate) = &opts.rate_limit
        && let Err(why) = rate_limit(&rate.value())
    {
        errors.push(syn::Error::new_spanned(rate, format!("`rate_limit`: {why}")));
    }
    if let Some(window) = &opts.idempotency_window {
        if opts.idempotency_key.is_none() {
            errors.push(syn::Error::new_spanned(window, "`idempotency_window` needs `idempotency_key = ..`"));
        } else if let Err(why) = duration_ms(&window.value()) {
            errors.push(syn::Error::new_spanned(window, format!("`idempotency_window`: {why}")));
        }
    }
    if let (Some(key), None) = (&opts.concurrency_key, &opts.concurrency) {
        errors.push(syn::Error::new_spanned(key, "`concurrency_key` needs `concurrency = N`"));
    }
    if let (Some(key), None) = (&opts.rate_limit_key, &opts.rate_limit) {
        errors.push(syn::Error::new_spanned(key, "`rate_limit_key` needs `rate_limit = \"N/m\"`"));
    }
    opts
}

/// The most `retries`; the same as `task_runtime::policy::MAX_RETRIES`.
const MAX_RETRIES: u8 = 100;

/// `"100ms"`, `"30s"`, `"10m"`, `"2h"` in ms, more than 0.
pub(crate) fn duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("a duration is a number and a unit (`ms`, `s`, `m` or `h`), like \"30s\", not {text:?}")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("a duration must be more than 0, not {text:?}"))
}

/// `"N/s|m|h"` (Celery's format) as (N, period in ms).
pub(crate) fn rate_limit(text: &str) -> Result<(u32, u64), String> {
    let bad = || format!("a rate limit is `N/s`, `N/m` or `N/h` with N at least 1, like \"100/m\", not {text:?}");
    let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let per_ms = match unit.trim() {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    Ok((count, per_ms))
}

/// The longest `timeout`: Lambda's longest function timeout, 15 minutes.
const MAX_TIMEOUT_MS: u64 = 900_000;

/// `"500ms"`, `"30s"`, `"10m"` in milliseconds: more than 0, at most 15 minutes.
pub(crate) fn timeout_ms(text: &str) -> Result<u64, String> {
    match duration_ms(text) {
        Ok(ms) if ms <= MAX_TIMEOUT_MS => Ok(ms),
        Ok(_) => Err(format!("`timeout` must be at most 15 minutes (Lambda's longest), not {:?}", text.trim())),
        Err(why) => Err(format!("`timeout`: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::timeout_ms;

    #[test]
    fn timeouts_read_in_ms_s_and_m_up_to_fifteen_minutes() {
        assert_eq!(timeout_ms("500ms"), Ok(500));
        assert_eq!(timeout_ms("30s"), Ok(30_000));
        assert_eq!(timeout_ms("15m"), Ok(900_000));
        for bad in ["", "30", "0s", "16m", "1h", "s", "-1s", "99999999999999999999s"] {
            assert!(timeout_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_and_rates_read_celery_s_formats() {
        assert_eq!(super::duration_ms("100ms"), Ok(100));
        assert_eq!(super::duration_ms("2h"), Ok(7_200_000));
        for bad in ["", "0s", "1d", "s", "1.5s"] {
            assert!(super::duration_ms(bad).is_err(), "{bad:?}");
        }
        assert_eq!(super::rate_limit("10/s"), Ok((10, 1_000)));
        assert_eq!(super::rate_limit("3/h"), Ok((3, 3_600_000)));
        for bad in ["", "10", "0/s", "x/s", "10/", "10/d", "-1/s"] {
            assert!(super::rate_limit(bad).is_err(), "{bad:?}");
        }
    }
}
