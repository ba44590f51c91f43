//! Typed access to a GGUF file's metadata.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file::Value;

/// The metadata table of a GGUF file.
pub(crate) struct Meta<'a> {
    map: &'a HashMap<String, Value>,
}

impl<'a> Meta<'a> {
    pub(crate) fn new(map: &'a HashMap<String, Value>) -> Self {
        Meta { map }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn need(&self, key: &str) -> Result<&'a Value> {
        self.get(key)
            .ok_or_else(|| anyhow!("the GGUF file has no `{key}` entry"))
    }

    pub(crate) fn string(&self, key: &str) -> Result<&'a str> {
        self.need(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|err| anyhow!("`{key}` is not a string: {err}"))
    }

    pub(crate) fn opt_string(&self, key: &str) -> Option<&'a str> {
        self.get(key)?.to_string().ok().map(String::as_str)
    }

    pub(crate) fn uint(&self, key: &str) -> Result<u64> {
        as_u64(self.need(key)?).with_context(|| format!("`{key}` is not an integer"))
    }

    pub(crate) fn opt_uint(&self, key: &str) -> Option<u64> {
        as_u64(self.get(key)?).ok()
    }

    pub(crate) fn opt_float(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::F32(value) => Some(f64::from(*value)),
            Value::F64(value) => Some(*value),
            other => as_u64(other).ok().map(|value| value as f64),
        }
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.to_bool().ok()
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Vec<&'a str>> {
        let items = self
            .need(key)?
            .to_vec()
            .map_err(|err| anyhow!("`{key}` is not an array: {err}"))?;
        items
            .iter()
            .map(|item| {
                item.to_string()
                    .map(String::as_str)
                    .map_err(|err| anyhow!("`{key}` holds a non-string: {err}"))
            })
            .collect()
    }

    pub(crate) fn opt_uints(&self, key: &str) -> Result<Option<Vec<u64>>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let items = value
            .to_vec()
            .map_err(|err| anyhow!("`{key}` is not an array: {err}"))?;
        let numbers = items
            .iter()
            .map(|item| as_u64(item).with_context(|| format!("`{key}` holds a non-integer")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(numbers))
    }
}

fn as_u64(value: &Value) -> Result<u64> {
    Ok(match value {
        Value::U8(v) => u64::from(*v),
        Value::U16(v) => u64::from(*v),
        Value::U32(v) => u64::from(*v),
        Value::U64(v) => *v,
        Value::I8(v) if *v >= 0 => *v as u64,
        Value::I16(v) if *v >= 0 => *v as u64,
        Value::I32(v) if *v >= 0 => *v as u64,
        Value::I64(v) if *v >= 0 => *v as u64,
        other => bail!("expected a non-negative integer, found {other:?}"),
    })
}
