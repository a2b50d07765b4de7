//! The OpenAPI schemas of the wire types whose JSON shape serde does not derive (they serialize by
//! hand): [`Dimensions`] and [`GroupKey`] are objects of string values, a [`FilterValue`] is a string or
//! a list of strings. The other wire types derive `utoipa::ToSchema` where they are declared, behind
//! this crate's `openapi` feature; the server assembles the document (`luminate-server/src/openapi`).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::filter::FilterValue;
use crate::point::Dimensions;
use crate::result::GroupKey;

/// `{"key": "value", …}`: an object whose values are strings.
fn string_map(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .into()
}

impl PartialSchema for Dimensions {
    fn schema() -> RefOr<Schema> {
        string_map("A series' dimensions: key to value.")
    }
}

impl ToSchema for Dimensions {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Dimensions")
    }
}

impl PartialSchema for GroupKey {
    fn schema() -> RefOr<Schema> {
        string_map(
            "A group's groupBy values, keyed by dimension; `{}` without groupBy. A point without the \
             dimension groups as \"\".",
        )
    }
}

impl ToSchema for GroupKey {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("GroupKey")
    }
}

impl PartialSchema for FilterValue {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        OneOfBuilder::new()
            .item(string())
            .item(ArrayBuilder::new().items(string()).min_items(Some(1)))
            .description(Some(
                "The dimension equals this string, or any of these strings (at most 1000).",
            ))
            .into()
    }
}

impl ToSchema for FilterValue {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FilterValue")
    }
}
