//! How one variable's text becomes a value: whole numbers, positive numbers, lists, JSON
//! pointers and attribute names, each refusal naming the variable.

use super::error::ConfigError;

/// A lookup of a variable that treats unset and empty alike.
pub trait Lookup: Fn(&str) -> Option<String> {}
impl<F: Fn(&str) -> Option<String>> Lookup for F {}

pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn number_or<T: std::str::FromStr>(
    get: &impl Lookup,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            variable,
            problem: format!("expected a non-negative whole number, got {v:?}"),
        }),
    }
}

pub fn positive_or<T: std::str::FromStr + PartialEq + Default>(
    get: &impl Lookup,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => positive(variable, &v),
    }
}

pub fn positive<T: std::str::FromStr + PartialEq + Default>(
    variable: &'static str,
    v: &str,
) -> Result<T, ConfigError> {
    match v.trim().parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => Err(ConfigError {
            variable,
            problem: format!("expected a positive whole number, got {v:?}"),
        }),
    }
}

/// `payload:/a/b` or `/a/b` → `/a/b`.
pub fn payload_pointer(value: &str) -> Result<String, String> {
    let pointer = value.strip_prefix("payload:").unwrap_or(value);
    if pointer.starts_with('/') {
        Ok(pointer.to_owned())
    } else {
        Err(format!(
            "expected a JSON pointer such as payload:/tenantId, got {value:?}"
        ))
    }
}

/// An attribute name that is not empty.
pub fn non_empty_attribute(name: &str) -> Result<String, String> {
    if name.is_empty() {
        Err("the attribute name is empty".into())
    } else {
        Ok(name.to_owned())
    }
}

/// A required variable, or an error saying what it is for.
pub fn required(
    get: &impl Lookup,
    variable: &'static str,
    why: &str,
) -> Result<String, ConfigError> {
    get(variable).ok_or_else(|| ConfigError {
        variable,
        problem: format!("is required{why}"),
    })
}
