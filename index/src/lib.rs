//! Cairn's tantivy index.
