//! The expansion: a dispatching function in place of the user's, a
//! companion type holding the options and the body (`run_inline`), and one
//! registry element.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::{check, options};

/// Expand `#[task(args)] item`. On a user error: the item unchanged plus
/// `compile_error!`s, so the rest of the crate still type-checks.
pub(crate) fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let opts = options::parse(args, &mut errors);
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(proc_macro2::Span::call_site(), "#[task] goes on a function (`fn` or `async fn`)");
            let ce = e.to_compile_error();
            return quote!(#ce #item);
        }
    };
    check::signature(&f, &mut errors);
    check::keys(&f, [&opts.concurrency_key, &opts.rate_limit_key], opts.idempotency_key.as_ref(), &mut errors);
    if !errors.is_empty() {
        let ce = errors.iter().map(syn::Error::to_compile_error);
        return quote!(#(#ce)* #item);
    }
    generate(&f, &opts)
}

/// The type of a task's value, and whether the task is fallible: a return
/// type whose last segment is `Result` or `TaskResult` is fallible, and its
/// first type argument is the value.
pub(crate) fn value_type(output: &ReturnType) -> (Type, bool) {
    let ty = match output {
        ReturnType::Default => return (syn::parse_quote!(()), false),
        ReturnType::Type(_, ty) => &**ty,
    };
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
            && (last.ident == "Result" || last.ident == "TaskResult")
                && let PathArguments::AngleBracketed(a) = &last.arguments
                    && let Some(GenericArgument::Type(t)) = a.args.first() {
                        return (t.clone(), true);
                    }
    (ty.clone(), false)
}

/// Whether a parameter's type is `GroupResults<..>` (by its last path
/// segment, however it is imported): the worker fills it in.
fn is_group_results(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "GroupResults"))
}

/// `Some(x)` or `None`, as tokens.
fn option<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The `RetryPolicy` the options declare.
fn retry_policy(opts: &options::Options) -> TokenStream {
    let ms = |lit: &Option<syn::LitStr>| option(lit.as_ref().and_then(|l| options::duration_ms(&l.value()).ok()));
    let (backoff, max) = (ms(&opts.retry_backoff), ms(&opts.retry_backoff_max));
    let jitter = opts.retry_jitter.as_ref().is_none_or(|b| b.value);
    quote!(::task_runtime::policy::RetryPolicy { backoff_ms: #backoff, backoff_max_ms: #max, jitter: #jitter })
}

/// The `Limits` the options declare.
fn limits(opts: &options::Options) -> TokenStream {
    let concurrency = option(opts.concurrency.as_ref().and_then(|n| n.base10_parse::<u32>().ok()));
    let rate = option(opts.rate_limit.as_ref().and_then(|r| options::rate_limit(&r.value()).ok()).map(|(count, per_ms)| {
        quote!(::task_runtime::policy::Rate { count: #count, per_ms: #per_ms })
    }));
    let (ckey, rkey) = (option(opts.concurrency_key.as_ref()), option(opts.rate_limit_key.as_ref()));
    quote!(::task_runtime::policy::Limits { concurrency: #concurrency, concurrency_key: #ckey, rate: #rate, rate_key: #rkey })
}

/// The `Idempotency` the options declare: a key from an argument's path,
/// or from a function that `__task_key` calls with a reference to each
/// argument, decoded from the call's JSON.
fn idempotency(opts: &options::Options, names: &[syn::Ident], types: &[Type], name_strs: &[String]) -> TokenStream {
    let rt = quote!(::task_runtime::__private);
    let window = opts.idempotency_window.as_ref().and_then(|w| options::duration_ms(&w.value()).ok()).map_or(quote!(::task_runtime::idempotency::DEFAULT_WINDOW_MS), |ms| quote!(#ms));
    let key = match &opts.idempotency_key {
        None => return quote!(::core::option::Option::None),
        Some(options::KeyOption::Arg(path)) => quote!(::task_runtime::idempotency::KeyFrom::Arg(#path)),
        Some(options::KeyOption::Function(path)) => {
            let shown = quote!(#path).to_string().replace(' ', "");
            quote!(::task_runtime::idempotency::KeyFrom::Function {
                name: #shown,
                of: {
                    fn __task_key(
                        __task_args: &#rt::serde_json::Map<::std::string::String, #rt::serde_json::Value>,
                    ) -> ::core::result::Result<#rt::serde_json::Value, ::std::string::String> {
                        #( let #names: #types = #rt::peek_arg(__task_args, #name_strs)?; )*
                        #rt::key_value(&#path(#(&#names),*))
                    }
                    __task_key
                },
            })
        }
    };
    quote!(::core::option::Option::Some(::task_runtime::idempotency::Idempotency { key: #key, window_ms: #window }))
}

fn generate(f: &ItemFn, opts: &options::Options) -> TokenStream {
    let rt = quote!(::task_runtime::__private);
    let vis = &f.vis;
    let ident = &f.sig.ident;
    let (docs, others): (Vec<_>, Vec<_>) = f.attrs.iter().partition(|a| a.path().is_ident("doc"));
    let lints: Vec<_> = others
        .iter()
        .filter(|a| ["allow", "expect", "warn", "deny"].iter().any(|l| a.path().is_ident(l)))
        .collect();

    let task_name = match &opts.name {
        Some(n) => quote!(#n),
        None => quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident))),
    };
    let function = match &opts.function {
        Some(f) => quote!(::core::option::Option::Some(#f)),
        None => quote!(::core::option::Option::None),
    };
    let capture = opts.capture_response.as_ref().is_none_or(|b| b.value);
    let retries = match &opts.retries {
        Some(r) => quote!(::core::option::Option::Some(#r)),
        None => quote!(::core::option::Option::None),
    };
    let timeout_ms = match opts.timeout.as_ref().and_then(|t| options::timeout_ms(&t.value()).ok()) {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    let retry = retry_policy(opts);
    let limits = limits(opts);

    // The caller's parameters; a `GroupResults` one is the worker's to fill
    // (a chord's callback gets its group's outcomes), never an argument.
    let (mut names, mut types, mut filled, mut filled_types, mut all_names) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for input in &f.sig.inputs {
        if let FnArg::Typed(pt) = input
            && let Pat::Ident(pi) = &*pt.pat {
                all_names.push(pi.ident.clone());
                if is_group_results(&pt.ty) {
                    filled.push(pi.ident.clone());
                    filled_types.push((*pt.ty).clone());
                } else {
                    names.push(pi.ident.clone());
                    types.push((*pt.ty).clone());
                }
            }
    }
    let fill = quote!(#( let #filled: #filled_types = #rt::group_results(#ident::NAME).await?; )*);
    let name_strs: Vec<String> = names.iter().map(|n| n.to_string().trim_start_matches("r#").to_owned()).collect();
    let (value_ty, fallible) = value_type(&f.sig.output);
    let assert_args = types.iter().map(|t| quote_spanned!(t.span()=> #rt::assert_arg::<#t>();));
    let assert_output = quote_spanned!(value_ty.span()=> #rt::assert_output::<#value_ty>(););
    let convert = if fallible { quote!(#rt::fallible) } else { quote!(#rt::value) };

    let idempotency = idempotency(opts, &names, &types, &name_strs);

    let inline_sig = {
        let mut sig = f.sig.clone();
        sig.ident = format_ident!("run_inline");
        sig
    };
    let body = &f.block;
    let start = match (f.sig.asyncness.is_some(), filled.is_empty()) {
        (true, _) => quote!(::std::boxed::Box::pin(async move { #fill #convert(#ident::run_inline(#(#all_names),*).await) })),
        (false, true) => quote!(::std::boxed::Box::pin(#rt::blocking(move || #convert(#ident::run_inline(#(#names),*))))),
        (false, false) => quote!(::std::boxed::Box::pin(async move {
            #fill
            #rt::blocking(move || #convert(#ident::run_inline(#(#all_names),*))).await
        })),
    };
    let schedule = match &opts.schedule {
        None => quote!(),
        Some(expression) => {
            // The run's arguments, typed: they must have the parameters' types.
            let bind = match &opts.schedule_args {
                None => quote!(),
                Some(syn::Expr::Tuple(t)) if t.elems.len() == names.len() && names.len() != 1 => {
                    quote_spanned!(t.span()=> let (#(#names,)*): (#(#types,)*) = #t;)
                }
                Some(e) if names.len() == 1 => {
                    let (n, t) = (&names[0], &types[0]);
                    let e = match e {
                        syn::Expr::Tuple(t) if t.elems.len() == 1 => t.elems[0].clone(),
                        other => other.clone(),
                    };
                    quote_spanned!(e.span()=> let #n: #t = #e;)
                }
                Some(e) => {
                    let msg = format!("`schedule_args` gives this task's {} argument(s) as a tuple, e.g. `({})`", names.len(), name_strs.join(", "));
                    syn::Error::new_spanned(e, msg).to_compile_error()
                }
            };
            let missing = (opts.schedule_args.is_none() && !names.is_empty()).then(|| {
                syn::Error::new_spanned(expression, "a scheduled task with parameters needs `schedule_args = (..)`: the arguments of each run")
                    .to_compile_error()
            });
            quote! {
                #missing
                fn __task_schedule_args()
                    -> ::core::result::Result<#rt::serde_json::Map<::std::string::String, #rt::serde_json::Value>, ::task_runtime::DispatchError>
                {
                    #bind
                    let mut __task_args = #rt::serde_json::Map::new();
                    #( #rt::put_arg(&mut __task_args, #ident::NAME, #name_strs, &#names)?; )*
                    ::core::result::Result::Ok(__task_args)
                }

                #[#rt::linkme::distributed_slice(#rt::SCHEDULES)]
                #[linkme(crate = #rt::linkme)]
                static __TASK_SCHEDULE: #rt::ScheduleDef = #rt::ScheduleDef {
                    spec: #ident::SPEC,
                    expression: #expression,
                    args: __task_schedule_args,
                };
            }
        }
    };
    // A task with parameters can be a later step of a chain: its first takes the value of the step before.
    let step = match (names.first(), types.first()) {
        (Some(_), Some(first_ty)) => {
            let (rest_names, rest_types, rest_strs) = (&names[1..], &types[1..], &name_strs[1..]);
            let first_str = &name_strs[0];
            quote! {
                /// This task as a step of a chain (`call.then(..)`): its first
                /// argument is the value of the step before; these are the others.
                pub fn step(#(#rest_names: #rest_types),*) -> ::task_runtime::Step<#first_ty, #value_ty> {
                    let mut __task_args = #rt::CallArgs::new(Self::NAME);
                    #( __task_args.put(#rest_strs, &#rest_names); )*
                    ::task_runtime::Step::typed(&Self::SPEC, #first_str, __task_args.finish())
                }
            }
        }
        _ => quote!(),
    };
    // One call per item, as a group made one call at a time.
    let map = if names.is_empty() {
        quote!()
    } else {
        let (item_ty, pat) = if names.len() == 1 {
            let (t, n) = (&types[0], &names[0]);
            (quote!(#t), quote!(#n))
        } else {
            (quote!((#(#types),*)), quote!((#(#names),*)))
        };
        quote! {
            /// One call per item (its arguments; a tuple when the task has
            /// several), sent as one group and made one by one as they are
            /// sent: add `.max_concurrency(n)`, `.then(callback)`, `.send()`.
            pub fn map<__TaskItems>(items: __TaskItems) -> ::task_runtime::Group<#value_ty>
            where
                __TaskItems: ::core::iter::IntoIterator<Item = #item_ty>,
                __TaskItems::IntoIter: ::core::marker::Send + 'static,
            {
                ::task_runtime::Group::from_calls(::core::iter::Iterator::map(
                    ::core::iter::IntoIterator::into_iter(items),
                    |#pat| Self::call(#(#names),*),
                ))
            }
        }
    };
    let companion_doc = format!(
        "The task [`{ident}()`]: its options ([`SPEC`](Self::SPEC)) and its body, run in place with [`run_inline`](Self::run_inline)."
    );

    quote! {
        #(#docs)*
        #(#lints)*
        #vis async fn #ident(#(#names: #types),*)
            -> ::core::result::Result<::task_runtime::TaskHandle<#value_ty>, ::task_runtime::DispatchError>
        {
            #ident::send_with(::core::default::Default::default(), #(#names),*).await
        }

        #[doc = #companion_doc]
        #[allow(non_camel_case_types)]
        #vis struct #ident {}

        impl #ident {
            /// The task's options, as `#[task(...)]` set them.
            pub const SPEC: #rt::TaskSpec = #rt::TaskSpec {
                name: #task_name,
                function: #function,
                capture_response: #capture,
                retries: #retries,
                timeout_ms: #timeout_ms,
                retry: #retry,
                limits: #limits,
                idempotency: #idempotency,
            };
            /// The name the task is registered under.
            pub const NAME: &'static str = Self::SPEC.name;

            /// Dispatch with options for this call: a delay, an id of the
            /// caller's choosing, another function, fewer retries.
            pub async fn send_with(
                __task_options: #rt::SendOptions,
                #(#names: #types),*
            ) -> ::core::result::Result<::task_runtime::TaskHandle<#value_ty>, ::task_runtime::DispatchError> {
                let mut __task_args = #rt::CallArgs::new(Self::NAME);
                #( __task_args.put(#name_strs, &#names); )*
                #rt::send::<#value_ty>(&Self::SPEC, __task_options, __task_args.finish()?).await
            }

            /// This call, not sent yet: send it alone, or as one of a group
            /// (`task_runtime::group`).
            pub fn call(#(#names: #types),*) -> ::task_runtime::Call<#value_ty> {
                let mut __task_args = #rt::CallArgs::new(Self::NAME);
                #( __task_args.put(#name_strs, &#names); )*
                ::task_runtime::Call::typed(&Self::SPEC, __task_args.finish())
            }

            #step

            #map

            /// Dispatch to run after `delay` (reads `scheduled` until then).
            pub async fn after(
                __task_delay: ::std::time::Duration,
                #(#names: #types),*
            ) -> ::core::result::Result<::task_runtime::TaskHandle<#value_ty>, ::task_runtime::DispatchError> {
                Self::send_with(#rt::SendOptions::default().delay(__task_delay), #(#names),*).await
            }

            /// Run the body here and now, without dispatching.
            #(#others)*
            pub #inline_sig #body
        }

        const _: () = {
            #(#assert_args)*
            #assert_output

            fn __task_call(
                mut __task_args: #rt::serde_json::Map<::std::string::String, #rt::serde_json::Value>,
            ) -> ::core::result::Result<#rt::TaskFuture, #rt::ArgsError> {
                #( let #names: #types = #rt::take_arg(&mut __task_args, #ident::NAME, #name_strs)?; )*
                #rt::no_more_args(__task_args, #ident::NAME)?;
                ::core::result::Result::Ok(#start)
            }

            #[#rt::linkme::distributed_slice(#rt::TASKS)]
            #[linkme(crate = #rt::linkme)]
            static __TASK: #rt::TaskDef = #rt::TaskDef {
                spec: #ident::SPEC,
                rust_path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                location: ::core::concat!(::core::file!(), ":", ::core::line!()),
                call: __task_call,
            };

            #schedule
        };
    }
}
