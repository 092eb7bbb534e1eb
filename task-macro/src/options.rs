//! `#[task(name = "...", function = "...", capture_response = bool, retries = N,
//! timeout = "30s", schedule = "rate(1 hour)", schedule_args = (..))]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitBool, LitInt, LitStr, Meta, Token};

const KNOWN: &str = "`name`, `function`, `capture_response`, `retries`, `timeout`, `schedule`, `schedule_args`";

/// The parsed options, each with the literal it came from.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) function: Option<LitStr>,
    pub(crate) capture_response: Option<LitBool>,
    pub(crate) retries: Option<LitInt>,
    /// The task's own time limit, e.g. `"30s"`.
    pub(crate) timeout: Option<LitStr>,
    pub(crate) schedule: Option<LitStr>,
    /// The arguments of each scheduled run: any expression, typed by the compiler.
    pub(crate) schedule_args: Option<Expr>,
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
            "retries" => set!(retries, Int, "0, 1 or 2"),
            "timeout" => set!(timeout, Str, "a duration: `\"500ms\"`, `\"30s\"`, `\"10m\"`"),
            "schedule" => set!(schedule, Str, "a string literal: `rate(...)`, `cron(...)` or `at(...)`"),
            "schedule_args" if opts.schedule_args.is_some() => {
                errors.push(syn::Error::new_spanned(&nv.path, "`schedule_args` set multiple times"));
            }
            "schedule_args" => opts.schedule_args = Some(nv.value.clone()),
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
            Ok(n) if n <= 2 => {}
            _ => errors.push(syn::Error::new_spanned(
                retries,
                "`retries` must be 0, 1 or 2: Lambda retries an asynchronous invocation at most twice",
            )),
        }
    }
    opts
}

/// The longest `timeout`: Lambda's longest function timeout, 15 minutes.
const MAX_TIMEOUT_MS: u64 = 900_000;

/// `"500ms"`, `"30s"`, `"10m"` in milliseconds: more than 0, at most 15 minutes.
pub(crate) fn timeout_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        _ => return Err(format!("`timeout` is a number and a unit (`ms`, `s` or `m`), like \"30s\", not {text:?}")),
    };
    let ms = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(scale));
    match ms {
        Some(ms) if ms > 0 && ms <= MAX_TIMEOUT_MS => Ok(ms),
        _ => Err(format!("`timeout` must be more than 0 and at most 15 minutes (Lambda's longest), not {text:?}")),
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
}
