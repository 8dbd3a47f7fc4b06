"""Automatic curation filters behind one interface; ``FILTERS.create(name, **settings)`` builds one."""

from tagsight.curate.filters.base import FILTERS, Candidate, Filter

# Import the filters so that they register themselves.
from tagsight.curate.filters import aesthetic, blur, duplicates, moderation, photometric, popularity, resolution, text  # noqa: F401,E501

__all__ = ["FILTERS", "Candidate", "Filter"]
