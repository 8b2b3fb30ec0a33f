"""Opening the store the same way in every command: the configured URL and group catalogue."""

from __future__ import annotations

from policy.catalogue import CatalogueError, load_catalogue
from policy.store import Store
from vidare.config import Config, ConfigError

__all__ = ["open_store"]


async def open_store(config: Config) -> Store:
    """The store at ``config.database_url`` with the shipped catalogue plus the operator's extra."""
    extra = config.extra_catalogue
    catalogue = None
    if extra is not None:
        if not extra.is_file():
            raise ConfigError(f"policy.extra_catalogue: cannot read {extra}")
        try:
            catalogue = load_catalogue(extra=extra)
        except CatalogueError as e:
            raise ConfigError(f"policy.extra_catalogue: {e}") from None
    return await Store.open(config.database_url, catalogue=catalogue)
