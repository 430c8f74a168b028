//! A bounded cache of classification answers (extraction answers, the
//! customer's own data, are never put here), keyed by the prompt's fingerprint
//! (model, system message and schema) and the normalised customer text, so
//! "Quero RENOVAR!" and "quero renovar" cost one call. Oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

type Key = (String, String);
type Values = Vec<(String, String)>;

#[derive(Debug)]
pub struct Cache {
    capacity: usize,
    inner: Mutex<(HashMap<Key, Values>, VecDeque<Key>)>,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache { capacity, inner: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    pub fn get(&self, fingerprint: &str, text: &str) -> Option<Vec<(String, String)>> {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.0.get(&(fingerprint.to_owned(), text.to_owned())).cloned()
    }

    pub fn put(&self, fingerprint: &str, text: &str, values: Vec<(String, String)>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (map, order) = &mut *inner;
        let key = (fingerprint.to_owned(), text.to_owned());
        if map.insert(key.clone(), values).is_none() {
            order.push_back(key);
        }
        while map.len() > self.capacity {
            match order.pop_front() {
                Some(oldest) => {
                    map.remove(&oldest);
                }
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_capacity_entries_dropping_the_oldest() {
        let cache = Cache::new(2);
        for text in ["a", "b", "c"] {
            cache.put("fp", text, vec![("class".to_owned(), text.to_owned())]);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("fp", "a"), None);
        assert!(cache.get("fp", "c").is_some());
        assert_eq!(cache.get("other", "c"), None, "another prompt is another key");
    }
}
