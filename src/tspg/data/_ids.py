"""Gene identifiers: Ensembl version suffixes, and which identifier style a list of genes uses."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*[GTP]\d{6,})\.\d+(_PAR_Y)?$")

#: Identifier styles recognised by :func:`id_style`, in the order they are tried, as (name, pattern).
ID_STYLES: tuple[tuple[str, re.Pattern], ...] = (
    ("Ensembl IDs (ENSG...)", re.compile(r"^ENS[A-Z]*[GTP]\d{6,}(\.\d+)?(_PAR_Y)?$")),
    ("Entrez IDs (numbers)", re.compile(r"^\d+$")),
    ("Affymetrix probe IDs (..._at)", re.compile(r"^[\w.-]+_at$", re.IGNORECASE)),
    ("RefSeq IDs (NM_...)", re.compile(r"^[NX][MRP]_\d+(\.\d+)?$")),
)


def strip_ensembl_version(gene: str) -> str:
    """``ENSG00000223972.5`` -> ``ENSG00000223972`` (any Ensembl gene, transcript or protein ID); others as they are.

    Examples
    --------
    >>> strip_ensembl_version("ENSG00000223972.5"), strip_ensembl_version("TP53")
    ('ENSG00000223972', 'TP53')
    """
    m = _ENSEMBL_VERSION.match(str(gene))
    return m.group(1) + (m.group(2) or "") if m else str(gene)


def id_style(genes: Iterable[str]) -> str:
    """The identifier style most of ``genes`` follow, in words, for messages.

    One of :data:`ID_STYLES`' names when at least half of the (first 2,000) genes match it, else ``"gene
    symbols (e.g. TP53)"`` when most look like symbols, else ``"other names (e.g. <first>)"``.

    Examples
    --------
    >>> id_style(["ENSG00000223972.5", "ENSG00000227232.5"]), id_style(["TP53", "MYC"])
    ('Ensembl IDs (ENSG...)', 'gene symbols (e.g. TP53)')
    """
    sample = [str(g) for g in list(genes)[:2000]]
    if not sample:
        return "no genes"
    for name, pattern in ID_STYLES:
        if sum(bool(pattern.match(g)) for g in sample) >= len(sample) / 2:
            return name
    symbol = re.compile(r"^[A-Za-z][A-Za-z0-9.@-]*$")
    if sum(bool(symbol.match(g)) for g in sample) >= len(sample) / 2:
        return f"gene symbols (e.g. {next(g for g in sample if symbol.match(g))})"
    return f"other names (e.g. {sample[0]})"
