"""tagsight: photo collections with hashtags into visual models, with consent built in.

Importing the package has no side effects: no logging configuration, no downloads, no I/O.
"""

__version__ = "0.1.0"
