"""The paper's public inputs by name: a sample-sheet value -> the remote file(s) it stands for.

=================================  ==============================================================================
value                              file
=================================  ==============================================================================
``roadmap:E003/H3K4me3``           Roadmap's consolidated hg19 alignments ``{EID}-{mark}.tagAlign.gz``
``roadmap-expression[:E003]``      ``57epigenomes.RPKM.pc.gz`` (genes x epigenomes, RPKM; ``:EID`` is the column)
``encode:ENCFF123ABC``             the ENCODE portal's file, its name and md5 read from the file's JSON metadata
``pchic:H1``                       the original's pcHi-C pickles of a tissue (``{tissue}_frag2neighbors.pickle``,
                                   ``{tissue}_pair2score.pickle``), read only through a restricted unpickler
``gencode:v19``                    GENCODE's ``gencode.v19.annotation.gtf.gz`` (any release ``vN``)
``ucsc:hg19/chrom.sizes``          UCSC's ``hg19.chrom.sizes`` (any assembly)
``https://...`` or                 any URL (its file name must be a safe name); with ``md5`` it is checked
``{url: https://..., md5: HEX}``
=================================  ==============================================================================

Base URLs, for mirrors and tests: ``CHROMOFORMER_ROADMAP_URL`` (``https://egg2.wustl.edu/roadmap``),
``CHROMOFORMER_ENCODE_URL`` (``https://www.encodeproject.org``), ``CHROMOFORMER_PCHIC_URL`` (the original's
``https://dohlee-bioinfo.sgp1.digitaloceanspaces.com/chromoformer-data``), ``CHROMOFORMER_GENCODE_URL``
(``https://ftp.ebi.ac.uk/pub/databases/gencode/Gencode_human``), ``CHROMOFORMER_UCSC_URL``
(``https://hgdownload.soe.ucsc.edu/goldenPath``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from chromoformer.errors import FetchError
from chromoformer.files.fetch import Remote, fetch
from chromoformer.files.layouts import encode_metadata_name
from chromoformer.files.names import NAME

BASES = {"roadmap": ("CHROMOFORMER_ROADMAP_URL", "https://egg2.wustl.edu/roadmap"),
         "encode": ("CHROMOFORMER_ENCODE_URL", "https://www.encodeproject.org"),
         "pchic": ("CHROMOFORMER_PCHIC_URL", "https://dohlee-bioinfo.sgp1.digitaloceanspaces.com/chromoformer-data"),
         "gencode": ("CHROMOFORMER_GENCODE_URL", "https://ftp.ebi.ac.uk/pub/databases/gencode/Gencode_human"),
         "ucsc": ("CHROMOFORMER_UCSC_URL", "https://hgdownload.soe.ucsc.edu/goldenPath")}
SCHEMES = ("roadmap:", "roadmap-expression", "encode:", "pchic:", "gencode:", "ucsc:", "http://", "https://")
EXPRESSION = "57epigenomes.RPKM.pc.gz"
MAX_METADATA = 8 << 20


def base(kind: str) -> str:
    env, default = BASES[kind]
    return os.environ.get(env, default).rstrip("/")


def is_remote(value: Any) -> bool:
    """Whether a sample-sheet value names a remote file (rather than a path)."""
    return isinstance(value, dict) or (isinstance(value, str) and value.startswith(SCHEMES))


def _safe(name: str, value: str) -> str:
    if not NAME.fullmatch(name):
        raise FetchError(f"{value}: its file name {name!r} is not a safe name (letters, digits and . _ - +)")
    return name


def remotes(value: Any) -> list[Remote]:
    """The remote file(s) a sheet value stands for (``pchic:`` gives two); raises :class:`FetchError`."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"url", "md5"})
        if unknown or not isinstance(value.get("url"), str) or not value["url"].startswith(("http://", "https://")):
            raise FetchError(f"{value!r}: a remote file is {{url: http(s)://..., md5: HEX}}"
                             + (f" (unknown key(s) {', '.join(unknown)})" if unknown else ""))
        md5 = value.get("md5")
        if md5 is not None and not (isinstance(md5, str) and re.fullmatch(r"[0-9a-f]{32}", md5.lower())):
            raise FetchError(f"{value['url']}: md5 {md5!r} is not 32 hex digits")
        return [Remote(_safe(PurePosixPath(urlparse(value["url"]).path).name, value["url"]), (value["url"],),
                       md5.lower() if md5 else None, folder="url")]
    if not isinstance(value, str):
        raise FetchError(f"{value!r}: not a file name or a remote reference")
    if value.startswith(("http://", "https://")):
        return remotes({"url": value})
    if m := re.fullmatch(r"roadmap:(E\d{3})/([A-Za-z0-9._+-]+)", value):
        name = f"{m.group(1)}-{m.group(2)}.tagAlign.gz"
        url = f"{base('roadmap')}/data/byFileType/alignments/consolidated/{name}"
        return [Remote(_safe(name, value), (url,), folder="roadmap")]
    if re.fullmatch(r"roadmap-expression(:E\d{3})?", value):
        return [Remote(EXPRESSION, (f"{base('roadmap')}/data/byDataType/rna/expression/{EXPRESSION}",),
                       folder="roadmap")]
    if m := re.fullmatch(r"pchic:([A-Za-z0-9]+)", value):
        return [Remote(f"{m.group(1)}_{kind}.pickle", (f"{base('pchic')}/{m.group(1)}_{kind}.pickle",), folder="pchic")
                for kind in ("frag2neighbors", "pair2score")]
    if m := re.fullmatch(r"gencode:v(\d+)", value):
        name = f"gencode.v{m.group(1)}.annotation.gtf.gz"
        return [Remote(name, (f"{base('gencode')}/release_{m.group(1)}/{name}",), folder="gencode")]
    if m := re.fullmatch(r"ucsc:([A-Za-z0-9]+)/chrom\.sizes", value):
        name = f"{m.group(1)}.chrom.sizes"
        return [Remote(name, (f"{base('ucsc')}/{m.group(1)}/bigZips/{name}",), folder="ucsc")]
    if m := re.fullmatch(r"encode:(ENC[A-Z]{2}\d{3}[A-Z]{3})", value):
        return [encode_file(m.group(1))]
    raise FetchError(f"{value!r}: not a known remote reference (roadmap:EID/MARK, roadmap-expression[:EID], "
                     "encode:ENCFF..., pchic:TISSUE, gencode:vN, ucsc:ASSEMBLY/chrom.sizes, or an http(s) URL)")


def expression_column(value: str) -> str | None:
    """The column ``roadmap-expression:EID`` names (None for any other value)."""
    m = re.fullmatch(r"roadmap-expression:(E\d{3})", value) if isinstance(value, str) else None
    return m.group(1) if m else None


def encode_file(accession: str) -> Remote:
    """An ENCODE file: its JSON metadata (``{base}/files/ACC/?format=json``, fetched once) gives the download
    path (``href``), the md5 (``md5sum``) and the size (``file_size``)."""
    url = f"{base('encode')}/files/{accession}/?format=json"
    path = fetch(Remote(encode_metadata_name(accession), (url,), folder="encode"), max_bytes=MAX_METADATA,
                 progress=False)
    try:
        meta = json.loads(path.read_text())
        href, md5, size = meta["href"], meta["md5sum"], meta.get("file_size")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        path.unlink(missing_ok=True)
        raise FetchError(f"{url}: not the ENCODE portal's file metadata ({type(e).__name__}: {e})") from None
    name = PurePosixPath(str(href)).name
    if not (isinstance(href, str) and href.startswith("/") and name.startswith(accession + ".")):
        raise FetchError(f"{url}: its download path {href!r} is not a file of {accession}")
    if not (isinstance(size, int) or size is None):
        raise FetchError(f"{url}: file_size {size!r} is not an integer")
    return Remote(_safe(name, accession), (f"{base('encode')}{href}",), str(md5).lower(), size, folder="encode")
