//! `#[on_event]`: the function stays as written, and one registry element
//! routes events of its argument's type to it.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat};

/// Expand `#[on_event] item`. On a user error: the item unchanged plus
/// `compile_error!`s.
pub(crate) fn on_event(args: TokenStream, item: TokenStream) -> TokenStream {
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(proc_macro2::Span::call_site(), "#[on_event] goes on an `async fn` taking one AWS event");
            let ce = e.to_compile_error();
            return quote!(#ce #item);
        }
    };
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(&args, "#[on_event] takes no options: the argument's type says which events it handles"));
    }
    if f.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(f.sig.fn_token, "#[on_event] needs an `async fn`"));
    }
    if !f.sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&f.sig.generics, "an #[on_event] handler cannot be generic"));
    }
    let event_ty = match f.sig.inputs.iter().collect::<Vec<_>>().as_slice() {
        [FnArg::Typed(pt)] if matches!(&*pt.pat, Pat::Ident(_)) => Some((*pt.ty).clone()),
        _ => {
            errors.push(syn::Error::new_spanned(&f.sig.inputs, "an #[on_event] handler takes exactly one argument: the event, e.g. `event: S3Event`"));
            None
        }
    };
    let (Some(ty), true) = (event_ty, errors.is_empty()) else {
        let ce = errors.iter().map(syn::Error::to_compile_error);
        return quote!(#(#ce)* #item);
    };
    let rt = quote!(::task_runtime::__private);
    let ident = &f.sig.ident;
    let (_, fallible) = crate::expand::value_type(&f.sig.output);
    let convert = if fallible { quote!(#rt::fallible) } else { quote!(#rt::value) };
    let kind = quote_spanned!(ty.span()=> <#ty as #rt::AwsEvent>::KIND);
    quote! {
        #f

        const _: () = {
            fn __on_event_call(event: #rt::serde_json::Value) -> ::core::result::Result<#rt::HandlerFuture, #rt::ArgsError> {
                let event: #ty = #rt::decode_event(event, ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)))?;
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move { #convert(#ident(event).await) }))
            }

            #[#rt::linkme::distributed_slice(#rt::HANDLERS)]
            #[linkme(crate = #rt::linkme)]
            static __ON_EVENT: #rt::HandlerDef = #rt::HandlerDef {
                kind: #kind,
                rust_path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                location: ::core::concat!(::core::file!(), ":", ::core::line!()),
                call: __on_event_call,
            };
        };
    }
}
