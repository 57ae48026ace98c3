"""A source's files: those its glob matches under the sources folder, and the same as
DuckDB's readers take them, plain UTF-8.

DuckDB's readers take UTF-8 only: a source in another encoding (`source.encoding`) is
read from UTF-8 copies in a temporary folder, made by Python's codecs, which know every
encoding an export may come in (DuckDB's own `latin-1` refuses the bytes Windows'
cp1252 uses for `€` and curly quotes). So is a compressed one (`.gz`, `.zst`): DuckDB's
CSV and JSON readers decompress it, but not its line-by-line read of a JSON source with
a bad line, nor the ingest's checks of a file's first and last lines.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import itertools
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from platform_lib.contract import Product
from platform_lib.processes import process_alive
from platform_lib.storage import literal, sources_dir


class IngestError(RuntimeError):
    """The source could not be ingested; the message names the product and the file."""


def files_of(product: Product) -> list[Path]:
    """The files the source's glob matches, refusing a glob or a link that leads out of the
    sources folder, a glob that matches nothing and an empty file."""
    root = sources_dir().resolve()
    pattern = (root / product.source.path).resolve()
    if not pattern.is_relative_to(root):
        raise IngestError(f"{product.id}: source path '{product.source.path}' points outside {root}")
    files = sorted(p for p in root.glob(product.source.path) if p.is_file())
    escaping = [p for p in files if not p.resolve().is_relative_to(root)]
    if escaping:
        raise IngestError(f"{product.id}: source file {escaping[0]} links to {escaping[0].resolve()}, outside {root}")
    if not files:
        raise IngestError(f"{product.id}: no source file matches {pattern}")
    empty = [p for p in files if p.stat().st_size == 0]
    if empty:
        raise IngestError(f"{product.id}: source file {empty[0]} is empty (0 bytes); refusing to replace the product with nothing")
    return files


@dataclass(frozen=True)
class Readable:
    """The source files as the readers get them: the files themselves, or plain UTF-8 copies
    (`copied`), each mapped to the source file it was made from."""

    files: list[Path]
    copied: dict[Path, Path]

    def source_of(self, file: Path) -> Path:
        return self.copied.get(file, file)

    def as_sources(self, text: str) -> str:
        """`text` naming the source files where it names their copies."""
        for copy, file in self.copied.items():
            text = text.replace(str(copy), str(file))
        return text


COPY_CHUNK_BYTES = 4 * 1024 * 1024
# The compressions DuckDB's readers know by a file's suffix; its other readers (read_text,
# read_blob) and Python's own reads of a file's first and last lines do not decompress.
COMPRESSED = (".gz", ".zst")


class Undecompressable(Exception):
    """A compressed source file whose stream is damaged or ends early."""


def _chunks(file: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed as its suffix says; Undecompressable if they cannot be."""
    with open(file, "rb") as handle:
        try:
            if file.suffix == ".gz":
                with gzip.GzipFile(fileobj=handle) as stream:
                    while chunk := stream.read(COPY_CHUNK_BYTES):
                        yield chunk
            elif file.suffix == ".zst":
                yield from _zstd_frames(handle)
            else:
                while chunk := handle.read(COPY_CHUNK_BYTES):
                    yield chunk
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise Undecompressable(str(error)) from None


def _zstd_frames(handle: BinaryIO) -> Iterator[bytes]:
    """A .zst file's frames one after another (a file compressed in parts has several).
    zstandard's own reader returns a frame cut short without a word: this one does not."""
    import zstandard  # only a .zst source needs it

    decompressor = zstandard.ZstdDecompressor()
    frame = decompressor.decompressobj()
    try:
        while chunk := handle.read(COPY_CHUNK_BYTES):
            while chunk:
                if frame.eof:
                    frame = decompressor.decompressobj()
                yield frame.decompress(chunk)
                chunk = frame.unused_data if frame.eof else b""
    except zstandard.ZstdError as error:
        raise Undecompressable(str(error)) from None
    if not frame.eof:
        raise Undecompressable("the zstd stream ends inside a frame")


COPIES_PREFIX = "mesh-source-"


def _remove_copies_of_dead_runs() -> None:
    """A run killed while it read leaves its copies, a compressed source uncompressed: the
    folders are named after the process that made them, and removed once it is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{COPIES_PREFIX}*-*"):
        pid = folder.name.removeprefix(COPIES_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def readable(product: Product, files: list[Path]) -> Iterator[Readable]:
    """The files as plain UTF-8 for the time of the read: themselves, or copies in a temporary
    folder, dropped afterwards, of the compressed ones and of all in another encoding."""
    copied = [f for f in files if product.source.transcoded or f.suffix in COMPRESSED]
    if not copied:
        yield Readable(files, {})
        return
    _remove_copies_of_dead_runs()
    with tempfile.TemporaryDirectory(prefix=f"{COPIES_PREFIX}{os.getpid()}-") as folder:
        copies = {}
        for number, file in enumerate(copied):
            # A folder for each copy, named without the compression's suffix: `a.csv` and `a.csv.gz` may both be sources.
            copies[file] = Path(folder) / str(number) / (file.stem if file.suffix in COMPRESSED else file.name)
            copies[file].parent.mkdir()
            _copy(product, file, copies[file])
        yield Readable([copies.get(f, f) for f in files], {copy: file for file, copy in copies.items()})


def _copy(product: Product, file: Path, copy: Path) -> None:
    chunks = _as_utf8(product, file, _chunks(file)) if product.source.transcoded else _chunks(file)
    with open(copy, "wb") as target:
        try:
            target.writelines(chunks)
        except Undecompressable as error:
            raise IngestError(f"{product.id}: {file} cannot be decompressed ({error}): a file still being written, or damaged?") from None


def _as_utf8(product: Product, file: Path, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks` of the file, in the contract's encoding, as UTF-8, line ends as they are. A
    byte the encoding does not have fails the read, naming its line: the contract names the
    wrong encoding, or the file is damaged, and no row of it can be trusted."""
    encoding = product.source.encoding
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    for chunk in itertools.chain(chunks, [b""]):
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            line = lines + error.object[: error.start].decode(error.encoding, errors="replace").count("\n") + 1
            raise IngestError(
                f"{product.id}: {file}, line {line}: byte 0x{error.object[error.start]:02X} is not {encoding} text "
                f"({error.reason}); is the contract's source.encoding right?"
            ) from None
        except UnicodeError as error:  # the start of the file: UTF-16 without its byte order mark
            raise IngestError(f"{product.id}: {file} is not {encoding} text ({error}); is the contract's source.encoding right?") from None
        lines += text.count("\n")
        yield text.encode("utf-8")


def relative_to_sources(file: str) -> str:
    """A source file's path as the mesh shows it: under the sources folder, relative to it."""
    return file.removeprefix(str(sources_dir().resolve()) + os.sep)


# The longest line of a source: DuckDB's CSV reader stops at 2 MB by default, but one large text field is still data.
MAX_LINE_BYTES = 64 * 1024 * 1024


def files_literal(files: list[Path]) -> str:
    """The files as a DuckDB list of paths, for its readers."""
    return "[" + ", ".join(literal(str(p)) for p in files) + "]"


def first_line(file: Path) -> bytes:
    """The file's first line (at most MAX_LINE_BYTES), without a byte order mark and its line end."""
    with open(file, "rb") as handle:
        return handle.readline(MAX_LINE_BYTES).removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
