//! Stripe's form encoding: `application/x-www-form-urlencoded` pairs whose keys carry the
//! nesting in brackets (`metadata[user_id]`, `line_items[0][price]`). The keys are written by
//! this crate (never from input); the values are percent-encoded, so `+`, `&`, `=` and
//! non-ASCII text in a value cannot change the shape of the request.

/// An ordered list of form pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Form {
        Form::default()
    }

    /// Appends a pair.
    pub fn push(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The request body.
    pub fn encode(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// The query string (`?…`, or empty).
    pub fn query(&self) -> String {
        if self.pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", self.encode())
        }
    }

    /// Reads a body back (the fake Stripe and the tests use it).
    pub fn decode(body: &str) -> Form {
        Form {
            pairs: url::form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The value of a key (the first one).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One path segment: an id from input or from the provider can never climb out of its path.
pub fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_keys_keep_brackets_meaning() {
        let mut f = Form::new();
        f.push("metadata[user_id]", "zoé+1&x=2");
        f.push("line_items[0][quantity]", "1");
        let body = f.encode();
        assert_eq!(
            body,
            "metadata%5Buser_id%5D=zo%C3%A9%2B1%26x%3D2&line_items%5B0%5D%5Bquantity%5D=1"
        );
        let back = Form::decode(&body);
        assert_eq!(back.get("metadata[user_id]"), Some("zoé+1&x=2"));
        assert_eq!(back, f);
    }

    #[test]
    fn a_segment_cannot_add_a_path_or_a_query() {
        assert_eq!(
            segment("pi_1/../../v1/charges?x=1"),
            "pi_1%2F..%2F..%2Fv1%2Fcharges%3Fx%3D1"
        );
        assert_eq!(Form::new().query(), "");
    }
}
