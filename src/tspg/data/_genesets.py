"""Gene set (GMT) reading and selection."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tspg.data._errors import InputError
from tspg.data._ids import id_style, strip_ensembl_version

log = logging.getLogger(__name__)


def _looks_like_description(token: str) -> bool:
    t = token.strip()
    return t == "" or "://" in t or " " in t or t.lower() in {"na", "n/a", ">", "-", "none"}


def read_gmt(path: str | Path, genes: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Read a GMT gene set library.

    Both the standard layout (``name<TAB>description<TAB>gene...``) and the original TSPG tool's layout
    without the description column (``name<TAB>gene...``) are accepted; which one a file uses is decided for
    the whole file: a description column is assumed when any line's second field looks like a description
    (empty, a URL, text with spaces, ``NA``), or, given ``genes``, when the second fields match the known genes
    far less often than the other fields do.

    Parameters
    ----------
    path
        The ``.gmt`` file.
    genes
        Optional known gene names (the GEM's), used to tell the two layouts apart.

    Returns
    -------
    Gene set name -> list of genes (order kept, duplicates removed).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")  # -sig: a byte-order mark is not text
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); a GMT file is "
                         "plain text.") from None
    for number, line in enumerate(lines, start=1):
        fields = [f.strip() for f in line.split("\t")]
        if not any(fields):
            continue
        if len(fields) < 2 or not fields[0]:
            raise InputError(f"{path}: line {number} is not 'name<TAB>[description<TAB>]gene...'.")
        rows.append(fields)
    if not rows:
        raise InputError(f"{path}: no gene sets in the file.")
    has_description = any(_looks_like_description(r[1]) for r in rows)
    if not has_description and genes is not None:
        known = set(genes)
        second = sum(r[1] in known for r in rows) / len(rows)
        rest = [g for r in rows for g in r[2:] if g]
        rest_rate = sum(g in known for g in rest) / max(len(rest), 1)
        has_description = second < 0.5 * rest_rate
    start = 2 if has_description else 1
    sets: dict[str, list[str]] = {}
    for r in rows:
        if r[0] in sets:
            raise InputError(f"{path}: gene set '{r[0]}' is defined twice.")
        sets[r[0]] = list(dict.fromkeys(g for g in r[start:] if g))
    return sets


def gene_lookup(genes: Sequence[str]) -> Callable[[str], str | None]:
    """A function giving the GEM's name of a gene-set member, or None when the GEM lacks it.

    A member matches a GEM gene of the same name; failing that, Ensembl version suffixes are ignored on both
    sides (``ENSG00000141510`` and ``ENSG00000141510.16`` match) where that makes a unique match.
    """
    present = set(genes)
    stripped: dict[str, str | None] = {}
    for g in genes:
        key = strip_ensembl_version(g)
        stripped[key] = g if key not in stripped else None  # None: two GEM genes share it, so no match

    def find(member: str) -> str | None:
        return member if member in present else stripped.get(strip_ensembl_version(member))

    return find


def select_gene_sets(
    library: dict[str, list[str]], names: Sequence[str], genes: Sequence[str], source: str = "the GMT file"
) -> tuple[list[str], dict[str, dict]]:
    """Choose the genes of the named sets that the GEM has.

    Parameters
    ----------
    library
        Gene set name -> genes, from :func:`read_gmt`.
    names
        The chosen set names; their union is used.
    genes
        The GEM's genes, in order.
    source
        Where the library came from, for error messages.

    Returns
    -------
    The selected genes in the GEM's order, and per set a report ``{"n_genes", "n_missing", "missing"}``.
    """
    report: dict[str, dict] = {}
    wanted: set[str] = set()
    find = gene_lookup(genes)
    for name in names:
        if name not in library:
            close = difflib.get_close_matches(name, list(library), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"{len(library)} sets are defined there."
            raise InputError(f"Unknown gene set '{name}' in {source}; {hint}")
        members = library[name]
        found, missing, n_versionless = [], [], 0
        for g in members:
            hit = find(g)
            if hit is None:
                missing.append(g)
            else:
                found.append(hit)
                n_versionless += hit != g
        report[name] = {"n_genes": len(members), "n_missing": len(missing), "missing": missing}
        if n_versionless:
            log.info("gene set %s: %d genes matched by Ensembl ID without the version suffix", name, n_versionless)
        if missing:
            log.info("gene set %s: %d of %d genes are not in the GEM (e.g. %s)", name, len(missing),
                     len(members), ", ".join(missing[:5]))
            if found and len(found) < len(members) / 2:
                log.warning("gene set %s: only %d of its %d genes are in the GEM; %s", name, len(found),
                            len(members), _styles(genes, members))
        else:
            log.info("gene set %s: all %d genes are in the GEM", name, len(members))
        wanted.update(found)
    selected = [g for g in genes if g in wanted]
    if not selected:
        members = [g for n in names for g in library[n]]
        raise InputError(f"None of the genes of gene set(s) {', '.join(names)} are in the GEM; "
                         f"{_styles(genes, members)}.")
    return selected, report


def _styles(gem_genes: Sequence[str], set_genes: Sequence[str]) -> str:
    """Which identifier style each side uses, and what to do when they differ (for messages)."""
    gem, gmt = id_style(gem_genes), id_style(set_genes)
    if gem.split(" (")[0] != gmt.split(" (")[0]:
        return (f"the GEM's genes look like {gem}, the GMT's like {gmt}: use one identifier for both (for a GCT "
                "with symbols in its Description column: --gene-id-column Description)")
    return f"both use {gem.split(' (')[0]}, so the GEM lacks most of them (another species or assembly?)"


class GeneSetRows:
    """A row test for reading a GCT for chosen gene sets: whether a row's gene belongs to one of them.

    A name passes when it is a member, also after removing Ensembl version suffixes on either side (as
    :func:`gene_lookup` matches). The first names it is asked about are kept, so that when none passes
    :meth:`why_none` can say which identifier style each side uses.
    """

    def __init__(self, members: Iterable[str]) -> None:
        self.members = set(members)
        self.stripped = {strip_ensembl_version(g) for g in self.members}
        self.seen: list[str] = []

    def __call__(self, gene: str) -> bool:
        """Whether the row named ``gene`` is read."""
        if len(self.seen) < 2000:
            self.seen.append(gene)
        return gene in self.members or strip_ensembl_version(gene) in self.stripped

    def why_none(self) -> str:
        """The identifier styles of the file's rows and of the sets (for the message when no row passed)."""
        return _styles(self.seen, sorted(self.members))
