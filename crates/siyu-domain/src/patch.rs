//! Changes (PATCH bodies) that tell a field left out from one set to `null`.

use serde::{Deserialize, Deserializer};

/// Reads a field that is absent (`None`, with `#[serde(default)]`), `null`
/// (`Some(None)`: clear it) or a value (`Some(Some(v))`).
pub fn present_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
