"""Search over restaurants and dishes: the words a customer types, made into a MariaDB full-text
query in boolean mode (pure; ``ordering.selectors.restaurant_search`` runs it).

Every word must match (``+``), as a prefix (``curr`` finds "curry"), so the results narrow as
the customer types. The index holds words of at least ``MIN_WORD`` characters
(``innodb_ft_min_token_size``, 3 by default); a query whose words are all shorter is matched
with ``LIKE`` on the names instead. The operators of boolean mode (``+ - > < ( ) ~ * " @``) are
not the customer's to use: only letters and digits of each word are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The shortest word InnoDB's full-text index holds (innodb_ft_min_token_size's default).
MIN_WORD = 3
# The longest query taken (the API refuses longer; the page cuts it).
MAX_QUERY = 100
# At most this many words count: a pasted paragraph is not a search.
MAX_WORDS = 8

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchTerms:
    words: tuple[str, ...]  # lower-cased, in the order typed, no repeats

    @property
    def indexed(self) -> tuple[str, ...]:
        """The words the full-text index can find."""
        return tuple(word for word in self.words if len(word) >= MIN_WORD)

    @property
    def boolean_query(self) -> str:
        """``+curr* +chick*``: every indexed word required, each as a prefix; "" when none."""
        return " ".join(f"+{word}*" for word in self.indexed)

    def __bool__(self) -> bool:
        return bool(self.words)


def search_terms(text: str) -> SearchTerms:
    """The words of ``text`` (letters and digits; ``_`` counts as a separator)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text[:MAX_QUERY].lower()):
        for part in word.split("_"):
            if part:
                seen.setdefault(part, None)
    return SearchTerms(words=tuple(seen)[:MAX_WORDS])
