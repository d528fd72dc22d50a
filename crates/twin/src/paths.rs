//! Path interning. Paths repeat across millions of devices, and within a device they repeat with
//! different instance numbers (`Device.WiFi.SSID.1.SSID`, `…SSID.2.SSID`). A path is stored as a
//! template id (`Device.WiFi.SSID.{i}.SSID`) plus its instance numbers, so a parameter costs a
//! few bytes beyond its value. The dictionary belongs to the shard's state machine and grows only
//! through `apply`, in log order, so every replica assigns the same ids.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Placeholder for an instance number in a template.
pub const INSTANCE: &str = "{i}";

/// Instance numbers held inline in a `PathId`. TR-181 paths rarely nest deeper than three
/// tables; numbers beyond the third, or above `u16::MAX`, stay literal in the template, so any
/// path still renders exactly.
pub const INLINE_INSTANCES: usize = 3;

/// 12 bytes, `Copy`, no heap: multiplied by every parameter of every device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PathId {
    pub template: u32,
    /// The first `n` are used, where `n` is the number of `{i}` in the template.
    pub instances: [u16; INLINE_INSTANCES],
}

#[derive(Debug, Default, Clone)]
pub struct PathDict {
    templates: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl PathDict {
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Templates in id order, for persistence.
    pub fn templates(&self) -> &[Box<str>] {
        &self.templates
    }

    /// Restores a dictionary persisted in id order.
    pub fn from_templates(templates: Vec<Box<str>>) -> Self {
        let ids = templates
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Self { templates, ids }
    }

    /// Interns a path, adding its template if new.
    pub fn intern(&mut self, path: &str) -> PathId {
        let (template, instances) = split(path);
        let id = match self.ids.get(template.as_str()) {
            Some(&id) => id,
            None => {
                let id = self.templates.len() as u32;
                let boxed: Box<str> = template.into_boxed_str();
                self.templates.push(boxed.clone());
                self.ids.insert(boxed, id);
                id
            }
        };
        PathId {
            template: id,
            instances,
        }
    }

    /// The template text of an id.
    pub fn template(&self, id: u32) -> Option<&str> {
        self.templates.get(id as usize).map(|t| &**t)
    }

    /// Looks a path up without adding it.
    pub fn lookup(&self, path: &str) -> Option<PathId> {
        let (template, instances) = split(path);
        self.ids.get(template.as_str()).map(|&id| PathId {
            template: id,
            instances,
        })
    }

    /// Renders a path id back into the path the device reported.
    pub fn render(&self, id: &PathId) -> String {
        let template = self
            .templates
            .get(id.template as usize)
            .map(|t| &**t)
            .unwrap_or("?");
        let mut out = String::with_capacity(template.len() + 4 * id.instances.len());
        let mut instances = id.instances.iter();
        let mut first = true;
        for segment in template.split('.') {
            if !first {
                out.push('.');
            }
            first = false;
            if segment == INSTANCE {
                match instances.next() {
                    Some(n) => out.push_str(&n.to_string()),
                    None => out.push_str(INSTANCE),
                }
            } else {
                out.push_str(segment);
            }
        }
        out
    }
}

/// Splits `A.1.B.22.C` into (`A.{i}.B.{i}.C`, [1, 22, 0]). Only canonical decimal segments (no
/// leading zero) that fit inline count as instance numbers, so rendering gives back the exact
/// reported path.
fn split(path: &str) -> (String, [u16; INLINE_INSTANCES]) {
    let mut template = String::with_capacity(path.len());
    let mut instances = [0u16; INLINE_INSTANCES];
    let mut used = 0;
    for (i, segment) in path.split('.').enumerate() {
        if i > 0 {
            template.push('.');
        }
        let canonical = !segment.is_empty()
            && segment.bytes().all(|b| b.is_ascii_digit())
            && (segment == "0" || !segment.starts_with('0'))
            && segment.len() <= 5
            && used < INLINE_INSTANCES;
        match segment.parse::<u16>() {
            Ok(n) if canonical => {
                template.push_str(INSTANCE);
                instances[used] = n;
                used += 1;
            }
            _ => template.push_str(segment),
        }
    }
    (template, instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_held_apart_from_templates() {
        let mut dict = PathDict::default();
        let a = dict.intern("Device.WiFi.SSID.1.SSID");
        let b = dict.intern("Device.WiFi.SSID.2.SSID");
        assert_eq!(a.template, b.template);
        assert_eq!(a.instances, [1, 0, 0]);
        assert_eq!(dict.len(), 1);
        assert_eq!(dict.render(&b), "Device.WiFi.SSID.2.SSID");
    }

    #[test]
    fn rendering_returns_the_exact_reported_path() {
        let mut dict = PathDict::default();
        for p in [
            "Device.",
            "Device.A.01.B",
            ".ExternalIPAddress",
            "Device.X.4294967295.Y",
            "Device.IP.Interface.1.",
        ] {
            let id = dict.intern(p);
            assert_eq!(dict.render(&id), p);
        }
    }

    #[test]
    fn dictionary_restores_in_id_order() {
        let mut dict = PathDict::default();
        let id = dict.intern("Device.Hosts.Host.3.IPAddress");
        let restored = PathDict::from_templates(dict.templates().to_vec());
        assert_eq!(restored.lookup("Device.Hosts.Host.3.IPAddress"), Some(id));
        assert_eq!(restored.render(&id), "Device.Hosts.Host.3.IPAddress");
    }
}
