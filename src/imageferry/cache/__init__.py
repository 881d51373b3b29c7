"""The local blob cache: a content-addressed folder, and a read-through source wrapper."""
