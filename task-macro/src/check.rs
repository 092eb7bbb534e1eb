//! What a task's signature may be, with an error on the exact token at fault.

use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

/// A `concurrency_key` or `rate_limit_key` must name one of the parameters,
/// and an `idempotency_key` path must start with one (`"order.id"`: `order`).
pub(crate) fn keys<'a>(
    f: &ItemFn,
    keys: impl IntoIterator<Item = &'a Option<syn::LitStr>>,
    idempotency: Option<&crate::options::KeyOption>,
    errors: &mut Vec<syn::Error>,
) {
    let params = params(f);
    let has = || if params.is_empty() { "none".to_owned() } else { params.join(", ") };
    for key in keys.into_iter().flatten() {
        if !params.contains(&key.value()) {
            errors.push(syn::Error::new_spanned(key, format!("{:?} is not a parameter of this task (it has: {})", key.value(), has())));
        }
    }
    if let Some(crate::options::KeyOption::Arg(path)) = idempotency {
        let value = path.value();
        let first = value.split('.').next().unwrap_or_default();
        if !params.iter().any(|p| p == first) {
            errors.push(syn::Error::new_spanned(path, format!("`idempotency_key`: {first:?} is not a parameter of this task (it has: {})", has())));
        }
    }
}

/// The names of the task's parameters.
fn params(f: &ItemFn) -> Vec<String> {
    f
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) => Some(pi.ident.to_string().trim_start_matches("r#").to_owned()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Check the signature, collecting every error.
pub(crate) fn signature(f: &ItemFn, errors: &mut Vec<syn::Error>) {
    let sig = &f.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a task cannot be generic: the worker must know the concrete types to decode its arguments",
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new_spanned(c, "a task cannot be a `const fn`"));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(u, "a task cannot be `unsafe`"));
    }
    if let Some(a) = &sig.abi {
        errors.push(syn::Error::new_spanned(a, "a task cannot have an `extern` ABI"));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(v, "a task cannot be variadic"));
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                "a task cannot take `self`: it must be a free function, so that the worker can call it by name",
            )),
            FnArg::Typed(pt) => {
                match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {}
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "a task argument must be a plain identifier (`name: Type`): arguments are sent by name",
                    )),
                }
                owned(&pt.ty, errors);
            }
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        owned(ty, errors);
    }
}

/// Types that travel in a message must be owned: no references, lifetimes,
/// trait objects or `impl Trait`.
fn owned(ty: &Type, errors: &mut Vec<syn::Error>) {
    let refuse = |errors: &mut Vec<syn::Error>, what: &str| {
        errors.push(syn::Error::new(
            ty.span(),
            format!("{what} cannot be part of a task's signature: arguments and results are sent as JSON, so they must be owned types (e.g. `String`, not `&str`)"),
        ));
    };
    match ty {
        Type::Reference(_) => refuse(errors, "a reference"),
        Type::Ptr(_) => refuse(errors, "a raw pointer"),
        Type::ImplTrait(_) => refuse(errors, "`impl Trait`"),
        Type::TraitObject(_) => refuse(errors, "a trait object"),
        Type::BareFn(_) => refuse(errors, "a function pointer"),
        Type::Paren(p) => owned(&p.elem, errors),
        Type::Group(g) => owned(&g.elem, errors),
        Type::Array(a) => owned(&a.elem, errors),
        Type::Slice(s) => owned(&s.elem, errors),
        Type::Tuple(t) => t.elems.iter().for_each(|e| owned(e, errors)),
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                owned(&q.ty, errors);
            }
            for seg in &p.path.segments {
                if let PathArguments::AngleBracketed(args) = &seg.arguments {
                    for arg in &args.args {
                        match arg {
                            GenericArgument::Lifetime(lt) => errors.push(syn::Error::new_spanned(
                                lt,
                                "a lifetime cannot be part of a task's signature: arguments and results are sent as JSON, so they must be owned",
                            )),
                            GenericArgument::Type(t) => owned(t, errors),
                            _ => {}
                        }
                    }
                }
            }
        }
        _ => {}
    }
}
