"""Corpora: the unit of access. Admins create and delete them; callers see those granted to them."""
