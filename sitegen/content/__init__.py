"""The site's content: YAML files read safely, checked, located as ``file:line:col``."""

from .loader import (RECORD_LOADERS, Content, Site, Store, User, load_content, load_site,
                     names_are_clean, record_order, record_paths, reload_file)
from .yaml_source import Loader

__all__ = ["RECORD_LOADERS", "Content", "Loader", "Site", "Store", "User", "load_content", "load_site",
           "names_are_clean", "record_order", "record_paths", "reload_file"]
