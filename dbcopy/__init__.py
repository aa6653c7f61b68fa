"""dbcopy: copy a Django project's data between databases, in dependency order, and prove it arrived."""

__version__ = "0.1.0"
