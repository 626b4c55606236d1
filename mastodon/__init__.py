"""mastodon: the Mastodon client API in front of the public API (see mastodon.app)."""
