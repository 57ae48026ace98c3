"""The data product contract: a typed model of a domain's YAML files.

A domain folder holds `domain.yaml` (name, owner team, description) and one YAML
file per data product under `products/`. The product's name is its file name; its
id is `<domain>.<name>`, which is also how SQL and other domains refer to it.
Field names follow the Open Data Contract Standard where one fits (`description`,
`version`, `required`, `primaryKey` is spelled `primary_key` here; see
`platform_lib.odcs` for the lossless export).

Every error raised while loading is a `ContractError` naming the file, the product
and the field, so a domain team can fix its YAML without reading this module.
"""

from __future__ import annotations

import codecs
import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from platform_lib.storage import UnreadableSql, normalize_type, relations_read, time_format

PRODUCT_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A consumer reads `<domain>.<product>` from a schema named after the domain in its own
# DuckDB file: these names are DuckDB's own schemas or catalogs there (`main` holds the
# consumer's own products).
RESERVED_DOMAIN_NAMES = {"main", "temp", "system", "memory", "information_schema", "pg_catalog"}


def domain_name_problem(name: str) -> str | None:
    """Why `name` cannot name a domain, or None if it can."""
    if not NAME.match(name):
        return f"'{name}' is not a domain name: lower case letters, digits and underscores, starting with a letter"
    if name in RESERVED_DOMAIN_NAMES:
        return f"'{name}' is DuckDB's own name in every domain's file; reserved: {', '.join(sorted(RESERVED_DOMAIN_NAMES))}"
    return None
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
DURATION = re.compile(r"^(\d+)\s*([smhd])$")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


_AS_WRITTEN = ContextVar("as_written", default=False)


@contextmanager
def as_written() -> Iterator[None]:
    """Load contracts by what they say, without the checks a platform adds over time (a key
    column is required, SQL reads only its inputs, a domain is named after its folder, ...):
    `mesh contract-diff` compares with contracts written under older rules, which must load
    to be compared, or a breaking change made while fixing them would go unseen."""
    token = _AS_WRITTEN.set(True)
    try:
        yield
    finally:
        _AS_WRITTEN.reset(token)


class ContractError(ValueError):
    """A domain file is invalid; the message names the file, the product and the field, and
    every other field at fault in `others`, so that one edit can mend them all."""

    def __init__(self, file: Path | str, product: str | None, field: str | None, problem: str, others: tuple[tuple[str | None, str], ...] = ()):
        self.file, self.product, self.field, self.problem = str(file), product, field, problem
        self.problems = ((field, problem), *others)
        where = [self.file]
        if product:
            where.append(f"product {product}")
        shown = "; and ".join(f"field '{f}': {p}" if f else p for f, p in self.problems)
        super().__init__(f"{': '.join(where)}: {shown}")


class FieldProblem(ValueError):
    """A rule across fields, blamed on the one to change: pydantic places a model validator's
    error at no field, and the message would then say only "fix the file"."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


def parse_duration(text: str) -> timedelta:
    match = DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"'{text}' is not a duration like 30m, 2h or 1d")
    return timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})


class _Strict(BaseModel):
    # A field's docstring is its description in the JSON Schema editors read (contract_schema.py).
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str
    """Lower case letters, digits and underscores."""
    type: str
    """A DuckDB type: BIGINT, VARCHAR, DATE, TIMESTAMP, "DECIMAL(10,2)" (quoted: it has a comma), ..."""
    required: bool = Field(default=False, strict=True)
    """Never NULL: the schema check blocks a candidate with a NULL in it."""
    description: str = ""
    """What a value means, for consumers (the catalog and the UI show it)."""
    pii: bool = Field(default=False, strict=True)
    """Personal data: masked in what other domains read (`mask`), withheld from error messages."""
    mask: Literal["hash", "redact"] | None = None
    """How a PII column of a public product leaves the domain: `hash` (SHA-256 salted with
    MESH_PII_SALT, still joinable; plain SHA-256 while that is unset: set it in production)
    or `redact` (NULL). The `pii-masked` policy of `mesh validate` wants it written out;
    a port left without one redacts."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"'{value}' is not a column name (lower case, digits, underscores)")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return normalize_type(value)

    @model_validator(mode="after")
    def _mask_needs_pii(self) -> Column:
        if self.mask and not self.pii:
            raise ValueError(f"column {self.name} has a mask but is not marked pii: true")
        return self


COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
"""The kwargs by which GE's expectations name columns."""


class QualityRule(BaseModel):
    """One Great Expectations rule: the expectation type, its kwargs inline, `mostly`
    and our severity (error blocks publication, warn only reports)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    expect: str
    """A Great Expectations expectation, expect_column_values_to_be_between say; its arguments
    (column, min_value, ...) go beside it."""
    mostly: float | None = Field(default=None, ge=0, le=1, strict=True)
    """The fraction of rows that must pass."""
    severity: Literal["error", "warn"] = "error"
    """`error` blocks publication, `warn` only reports."""
    name: str | None = None
    """The check's name in Dagster, if the default (the expectation and its column) is taken;
    not `schema`, `primary_key` or `row_count`, the platform's own checks."""

    @property
    def kwargs(self) -> dict[str, Any]:
        """The expectation's own kwargs, as GE documents them (with `mostly`)."""
        kwargs = dict(self.model_extra or {})
        if self.mostly is not None:
            kwargs["mostly"] = self.mostly
        return kwargs

    @property
    def check_name(self) -> str:
        if self.name:
            return self.name
        short = self.expect.removeprefix("expect_")
        target = self.kwargs.get("column") or "_".join(self.kwargs.get("column_list", []))
        if not target and "column_A" in self.kwargs:
            target = f"{self.kwargs['column_A']}_{self.kwargs['column_B']}"
        return f"{short}__{target}" if target else short

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    @property
    def columns(self) -> list[str]:
        """The columns the rule names, whichever kwargs name them."""
        named = [self.kwargs.get(k) for k in COLUMN_KWARGS]
        return [c for item in named for c in ([item] if isinstance(item, str) else item or [])]


class Source(_Strict):
    """Files an ingest product reads, relative to the mesh's source folder."""

    format: Literal["csv", "parquet", "json"]
    """`json` is newline-delimited: one object per line."""
    path: str
    """A file or a glob under the sources folder ($MESH_DATA_DIR/sources); CSV and JSON files
    may be compressed (.gz, .zst). A folder named like a partition (`day=2026-12-08/`) is
    only a folder: its value is no column, the files must hold it."""
    append_only: bool = Field(default=False, strict=True)
    """Files are only ever added under `path` (a file a day): a run reads the files the
    published version was not read from and adds their rows to it. A file read before is
    not read again, changed (the summary notes it) or gone; `mesh materialize --full-refresh`
    reads every file. Not for a public product with PII: its port masks the rows."""
    max_bad_fraction: float = Field(default=0.0, ge=0, le=1, strict=True)
    """The fraction of rows that may go to the quarantine before the ingest fails."""
    encoding: str = "utf-8"
    """The text encoding of CSV and JSON files, any Python codec name (latin-1, cp1252, utf-16, ...);
    not for Parquet."""
    # How a CSV file writes numbers and times, which DuckDB's reader does not guess (it
    # does guess the delimiter and quote, unless stated below): a European spreadsheet's
    # export writes 1.234,50 and 31.12.2024.
    decimal_separator: Literal[".", ","] = "."
    """What a CSV file writes before decimals (this and the five fields below: CSV only)."""
    thousands_separator: Literal[".", ",", " ", "'"] | None = None
    """What a CSV file groups thousands with, if anything, never the decimal separator
    (`.` needs `decimal_separator: ','`); a space stands for the no-break spaces
    spreadsheets write too (U+00A0, U+202F)."""
    date_format: str | None = None
    """How a CSV file writes dates, as a strptime format: '%d.%m.%Y' (default: ISO 8601)."""
    timestamp_format: str | None = None
    """How a CSV file writes timestamps, as a strptime format: '%d.%m.%Y %H:%M' (default: ISO 8601)."""
    # DuckDB's sniffer guesses these two from the file, and can guess wrong: a file of one
    # column, values holding both `,` and `;`, a quote never closed (it then turns quoting
    # off for the whole file). An export whose dialect is fixed states it.
    delimiter: str | None = None
    """What separates a CSV file's fields, one character: ',', ';', a pipe, or a tab ("\\t", or '\\t'
    in single quotes); guessed from the file when left out. Not the decimal or thousands separator."""
    quote: Literal['"', "'", ""] | None = None
    """What a CSV file quotes values with: '"', "'", or '' for no quoting at all (a quote mark is
    then text like any other); guessed from the file when left out."""

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"'{value}' must be a path inside the source folder (no absolute path, no '..')")
        return value

    @field_validator("encoding")
    @classmethod
    def _codec(cls, value: str, info: ValidationInfo) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"'{value}' is not an encoding Python knows (utf-8, latin-1, cp1252, utf-16, ...)") from None
        if info.data.get("format") == "parquet":
            raise ValueError("Parquet files are binary, with no text encoding: leave `encoding` out")
        return value

    @field_validator("decimal_separator", "thousands_separator", "date_format", "timestamp_format", "delimiter", "quote")
    @classmethod
    def _csv_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("format") not in (None, "csv"):
            raise ValueError(f"only a CSV source has a {info.field_name}")
        return value

    @field_validator("thousands_separator")
    @classmethod
    def _not_the_decimal_separator(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("decimal_separator"):
            raise ValueError(f"'{value}' is the decimal separator too: a file that groups thousands with '.' has decimal_separator: ','")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = "\t" if value == "\\t" else value  # '\t' in single quotes: YAML keeps the backslash
        if value is not None and (len(value) != 1 or value in "\r\n"):
            raise ValueError(f"{value!r} is not one character that can separate fields (',', ';', '|', a tab: \"\\t\")")
        for separator in ("decimal_separator", "thousands_separator"):
            if value is not None and value == info.data.get(separator):
                raise ValueError(
                    f"'{value}' is the {separator} too: a number not quoted would be split in two fields "
                    "(a file with decimal commas separates its fields with ';', say)"
                )
        return value

    @field_validator("quote")
    @classmethod
    def _not_the_delimiter(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and value == info.data.get("delimiter"):
            raise ValueError(f"{value!r} is the delimiter too")
        return value

    @field_validator("date_format", "timestamp_format")
    @classmethod
    def _strptime(cls, value: str | None) -> str | None:
        return None if value is None else time_format(value)

    @property
    def transcoded(self) -> bool:
        """Whether the files must be read as UTF-8 copies: DuckDB's readers take UTF-8 only."""
        return codecs.lookup(self.encoding).name != "utf-8"


class DbtModel(_Strict):
    """Where a `transform: dbt` product is built: a model of a project under dbt_projects/."""

    project: str
    """The project's folder under dbt_projects/."""
    model: str | None = None
    """The model that builds the product (default: the product's name)."""

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"'{value}' is not a dbt project folder name under dbt_projects/ (lower case, digits, underscores)")
        return value


class Freshness(_Strict):
    fail_after: str
    """How old the published version may get before the freshness check fails: 30m, 2h, 1d
    (at least 1m)."""
    warn_after: str | None = None
    """A shorter age at which it warns (shorter than fail_after)."""

    @field_validator("fail_after", "warn_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) < timedelta(minutes=1) and not _AS_WRITTEN.get():
            raise ValueError(f"'{value}' is less than a minute: an SLO is at least 1m (Dagster's own limit)")
        return value

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Freshness:
        if self.warn_after and parse_duration(self.warn_after) >= parse_duration(self.fail_after) and not _AS_WRITTEN.get():
            raise ValueError(f"warn_after ({self.warn_after}) must be shorter than fail_after ({self.fail_after})")
        return self


class Retention(_Strict):
    """How many published snapshots a port keeps, and how long one stays readable once replaced.

    A consumer reads the pointer, then the snapshot it names, maybe minutes later (a dbt
    run, a notebook): a version beyond `snapshots` is deleted only once its successor has
    been published for `grace`, so that read never finds its data gone.
    """

    snapshots: int = Field(ge=1, strict=True)
    """How many published versions the output port keeps."""
    grace: str = "1h"
    """How long a replaced version stays readable at least: 30m, 2h, 1d."""

    @field_validator("grace")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def grace_period(self) -> timedelta:
        return parse_duration(self.grace)


class Domain(_Strict):
    name: str
    """The domain's folder name."""
    owner: str
    """The team that owns the domain and, unless one says otherwise, its products."""
    description: str = ""
    """What the domain owns, and for whom."""
    path: Path = Field(exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = domain_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Product(_Strict):
    """A data product's contract."""

    domain: str = Field(exclude=True)
    name: str = Field(exclude=True)
    path: Path = Field(exclude=True)

    description: str
    """What one row is, for the product's consumers."""
    version: str = "1.0.0"
    """The contract's semantic version: it never goes down, and a breaking change to a public product needs a new major."""
    owner: str
    """The owning team (default: the domain's owner)."""
    access: Literal["public", "internal"] = "internal"
    """`public`: other domains may read it, its PII masked; `internal`: only its own domain."""
    tier: Literal["bronze", "silver", "gold"] | None = None
    """How refined the product is, for the catalog: raw (bronze) to ready for decisions (gold)."""
    source: Source | None = None
    """The files an ingest product reads (a product has a `source` or a `transform`)."""
    transform: Literal["sql", "pandas", "dbt"] | None = None
    """How the product is built: the .sql or .py beside the contract, or a dbt model (`dbt`)."""
    dbt: DbtModel | None = None
    """With `transform: dbt`: the project and the model that build the product."""
    inputs: tuple[str, ...] = ()
    """The products a sql or pandas transform reads, by id: customers.customer_profiles."""
    schedule: str | None = None
    """A cron expression, '0 6 * * *'; without it, the product follows its inputs' updates."""
    freshness: Freshness | None = None
    """The freshness SLO, a Dagster freshness policy."""
    retention: Retention = Retention(snapshots=10)
    """What the output port keeps of the versions it published. The `retention` policy of
    `mesh validate` wants it written out; a port left without one keeps 10."""
    primary_key: tuple[str, ...] = ()
    """The columns that identify a row: checked unique, and `required: true` each."""
    columns: tuple[Column, ...] = Field(min_length=1)
    """Every column, in order, as the product's candidate has them; the output port serves them in this order, so new ones go at the end."""
    quality: tuple[QualityRule, ...] = ()
    """Great Expectations expectations, checked on every candidate before it is published."""
    max_row_drop: float | None = Field(default=None, ge=0, lt=1, strict=True)
    """The fraction of the served version's rows a candidate may lose (0.5: at most half)
    before its blocking `row_count` check fails: an export cut short, or a join that lost
    its matches, reads as a valid but small product. Without it, any row count passes."""

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER.match(str(value)):
            raise ValueError(f"'{value}' is not a semantic version like 1.2.0")
        return str(value)

    @field_validator("inputs", "primary_key", mode="before")
    @classmethod
    def _a_list(cls, value: Any, info: ValidationInfo) -> Any:
        """One name where a list goes: pydantic would say only that it is no tuple."""
        if isinstance(value, str):
            raise ValueError(f"a list, even of one: `{info.field_name}: [{value}]`")
        return value

    @field_validator("inputs")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not PRODUCT_ID.match(item):
                raise ValueError(f"'{item}' is not a product id like customers.customer_profiles")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from dagster._utils.schedules import is_valid_cron_string

            if not is_valid_cron_string(value):
                raise ValueError(f"'{value}' is not a cron expression like '0 * * * *'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        if (self.source is None) == (self.transform is None):
            raise ValueError("a product has either a `source` (ingest) or a `transform` (sql, pandas, dbt)")
        if self.source and self.inputs:
            raise FieldProblem("inputs", "an ingest product (with `source`) takes no `inputs`")
        if self.source and self.source.append_only and self.masked_columns:
            raise FieldProblem(
                "source.append_only",
                f"it adds rows to the published version, but this public product's port masks its PII column "
                f"{', '.join(c.name for c in self.masked_columns)}: make it `access: internal` (the products reading it mask) or leave append_only out"
            )
        if (self.transform == "dbt") != (self.dbt is not None):
            raise FieldProblem("dbt", "`transform: dbt` and `dbt: {project: ...}` go together")
        if self.transform and self.transform != "dbt" and not self.inputs:
            raise FieldProblem("inputs", "a transformed product needs `inputs` (a dbt product takes them from its dbt sources)")
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FieldProblem("columns", f"columns listed twice: {', '.join(duplicates)}")
        twice = sorted({k for k in self.primary_key if self.primary_key.count(k) > 1})
        if twice:
            raise FieldProblem("primary_key", f"primary_key names {', '.join(twice)} more than once")
        unknown = [k for k in self.primary_key if k not in names]
        if unknown:
            raise FieldProblem("primary_key", f"primary_key names columns not in `columns`: {', '.join(unknown)}")
        nullable = [c.name for c in self.columns if c.name in self.primary_key and not c.required]
        if nullable and not _AS_WRITTEN.get():
            raise FieldProblem("primary_key", f"primary_key column {', '.join(nullable)} is not `required: true`: a key is never null")
        if self.id in self.inputs:
            raise FieldProblem("inputs", f"{self.id} lists itself in `inputs`")
        return self

    @property
    def id(self) -> str:
        return f"{self.domain}.{self.name}"

    @property
    def dbt_model(self) -> str | None:
        return (self.dbt.model or self.name) if self.dbt else None

    @property
    def kind(self) -> str:
        return "ingest" if self.source else str(self.transform)

    @cached_property
    def column_types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    @property
    def pii_columns(self) -> list[Column]:
        return [c for c in self.columns if c.pii]

    def port_mask(self, column: Column) -> Literal["hash", "redact"] | None:
        """How the output port serves `column`: hashed, redacted (NULL), or in clear (None).
        A public product masks its PII, redacted unless `mask: hash`; an internal one masks nothing."""
        return (column.mask or "redact") if column.pii and self.access == "public" else None

    @property
    def masked_columns(self) -> list[Column]:
        """The columns `serve.publish` masks."""
        return [c for c in self.columns if self.port_mask(c)]

    @property
    def served_columns(self) -> list[Column]:
        """The columns as consumers read them from the output port: a hashed column is text
        (a hex digest) whatever its contract type, a redacted one is NULL in every row."""
        masked = {c.name for c in self.masked_columns}
        return [
            c if c.name not in masked else c.model_copy(update={"type": "VARCHAR"} if c.mask == "hash" else {"required": False})
            for c in self.columns
        ]

    @property
    def sql(self) -> str:
        """The query of a `transform: sql` product, from the `.sql` beside its contract."""
        return self.sibling(".sql").read_text(encoding="utf-8").strip().rstrip(";")

    def sibling(self, suffix: str) -> Path:
        """A file next to the contract with the same name, e.g. the `.sql` of a SQL transform."""
        return self.path.with_suffix(suffix)


def _field_path(loc: tuple[Any, ...], document: dict[str, Any]) -> str:
    """Turn pydantic's error location into `columns[email].type`, naming a column by its name
    (a quality rule's `name` is not how a reader finds it: rules keep their position)."""
    parts: list[str] = []
    node: Any = document
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if parts and parts[-1] == "columns" and isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                label = str(node[item].get("name", item))
            parts[-1] = f"{parts[-1]}[{label}]" if parts else f"[{label}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


class _ContractLoader(yaml.SafeLoader):
    """YAML as `safe_load` reads it, but a key given twice in one mapping is an error: PyYAML
    keeps the last one, so a second `columns:` block would silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key '{key}' appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, product: str | None) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_ContractLoader)
    except FileNotFoundError:
        raise ContractError(path, product, None, "file not found") from None
    except UnicodeDecodeError as error:
        raise ContractError(path, product, None, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and start:
            problem += f" ({context} at line {start.line + 1})"
        raise ContractError(path, product, None, f"not valid YAML{where}: {problem}") from None
    if document is None:
        raise ContractError(path, product, None, "the file is empty: it needs its fields")
    if not isinstance(document, dict):
        raise ContractError(path, product, None, "expected a mapping of fields at the top level")
    return document


def _validated(model: type[BaseModel], document: dict[str, Any], file: Path, product: str | None, context: dict[str, Any]):
    try:
        return model.model_validate({**document, **context})
    except ValidationError as error:
        errors = error.errors()
        typos = [e for e in errors if e["type"] == "extra_forbidden"]
        # A misspelt required field is both missing and unknown: the unknown one is the typo.
        first = typos[0] if typos and any(e["type"] == "missing" for e in errors) else errors[0]
        problems = dict.fromkeys(_problem(e, document) for e in [first, *(e for e in errors if e is not first)])
        (field, message), *others = problems
        raise ContractError(file, product, field, message, tuple(others)) from None


def _problem(error: Any, document: dict[str, Any]) -> tuple[str | None, str]:
    """A pydantic error as the field at fault and what is wrong with it, in a team's words."""
    field = _field_path(error["loc"], document) or None
    if isinstance(cause := (error.get("ctx") or {}).get("error"), FieldProblem):
        return cause.field, str(cause)
    if error["type"] == "extra_forbidden":
        return field, "unknown field (a typo?)"
    if error["type"] == "missing":
        return field, "required field is missing"
    if error["type"] == "too_short" and not error["input"]:
        return field, "is an empty list: give it at least one entry"
    if error["type"] == "string_type" and error["input"] is None:
        return field, "is empty: give it a value"
    if error["type"] == "string_type" and isinstance(error["input"], (bool, int, float, date)):
        return field, f"expected text, YAML read {error['input']!r} as a {type(error['input']).__name__}: put the value in quotes"
    return field, error["msg"].removeprefix("Value error, ")


def load_domain(domain_dir: Path | str) -> Domain:
    """The domain of a folder, whose name must be the folder's: two folders cannot claim one domain's products."""
    path = Path(domain_dir) / "domain.yaml"
    document = _read_yaml(path, None)
    domain = _validated(Domain, document, path, None, {"path": Path(domain_dir)})
    if domain.name != path.parent.name and not _AS_WRITTEN.get():
        problem = f"'{domain.name}' is not the name of its folder {path.parent.name}: a domain is named after its folder"
        raise ContractError(path, None, "name", problem)
    return domain


def load_product(path: Path, domain: Domain) -> Product:
    name = path.stem
    product_id = f"{domain.name}.{name}"
    if not NAME.match(name):
        raise ContractError(path, product_id, None, "the file name is the product name: lower case, digits, underscores")
    document = _read_yaml(path, product_id)
    document.setdefault("owner", domain.owner)
    product = _validated(Product, document, path, product_id, {"domain": domain.name, "name": name, "path": path})
    _check_siblings(product)
    _check_rules(product)
    return product


PLATFORM_CHECKS = ("schema", "primary_key", "row_count")
"""The checks every product has besides its rules (factories/quality.py)."""


def _check_rules(product: Product) -> None:
    """Rules fail at load, not at run time: unknown expectation, bad kwarg, unknown column."""
    from platform_lib.quality import validate_rule

    seen: set[str] = set()
    for index, rule in enumerate(product.quality):
        field = f"quality[{index}]"
        if rule.check_name in PLATFORM_CHECKS:
            raise ContractError(product.path, product.id, field, f"'{rule.check_name}' is the name of the platform's own check; give the rule another `name`")
        if rule.check_name in seen:
            raise ContractError(product.path, product.id, field, f"check name '{rule.check_name}' is used twice; give one rule a `name`")
        seen.add(rule.check_name)
        try:
            validate_rule(rule, set(product.column_types))
        except ValueError as error:
            raise ContractError(product.path, product.id, f"{field}.{rule.expect}", str(error)) from None


def _check_siblings(product: Product) -> None:
    needed = {"sql": ".sql", "pandas": ".py"}.get(product.transform or "")
    if needed and not product.sibling(needed).exists():
        raise ContractError(
            product.path, product.id, "transform", f"transform: {product.transform} needs {product.sibling(needed).name} beside the contract"
        )
    if product.transform == "sql" and not _AS_WRITTEN.get():
        _check_sql_reads_inputs(product)
    if product.transform == "pandas" and not _AS_WRITTEN.get():
        _check_pandas_module(product)


def _check_pandas_module(product: Product) -> None:
    """The `.py` parses and binds `transform` at its top level: read, not run, so a typo fails
    the load (and `mesh validate`) instead of the product's first run."""
    import ast

    path = product.sibling(".py")
    try:
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}" if isinstance(error, SyntaxError) else ""
        raise ContractError(path, product.id, "transform", f"the module does not parse{where}: {getattr(error, 'msg', error)}") from None
    bound = set()
    for statement in module.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in statement.names)
    if "transform" not in bound and "*" not in bound:
        raise ContractError(path, product.id, "transform", "the module defines no `transform(inputs)` at its top level")


GENERATING_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}  # what a transform may call: they read nothing


def _check_sql_reads_inputs(product: Product) -> None:
    """A SQL transform reads only the products its contract lists. The domain's file holds views
    of every product any of its transforms read, so SQL could name one it does not declare,
    or read a port's files directly: that input's version would go unrecorded, its blocked
    state would not stop this product, and its access would not be checked."""
    sql_file = product.sibling(".sql")
    try:
        tables, functions = relations_read(product.sql)
    except UnicodeDecodeError as error:
        raise ContractError(sql_file, product.id, "transform", f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except UnreadableSql as error:
        raise ContractError(sql_file, product.id, "transform", str(error)) from None
    listed = ", ".join(product.inputs) or "none"
    if functions - GENERATING_TABLE_FUNCTIONS:
        called = ", ".join(sorted(functions - GENERATING_TABLE_FUNCTIONS))
        raise ContractError(
            sql_file, product.id, "inputs",
            f"the SQL calls the table function {called}: a transform reads only the products listed in `inputs` ({listed})",
        )
    for parts in sorted(tables):
        *where, name = (part.lower() for part in parts)  # DuckDB's names ignore case, quoted or not
        if where in ([], ["main"], [product.domain, "main"]):
            where = [product.domain]
        if ".".join((*where, name)) not in product.inputs:
            raise ContractError(
                sql_file, product.id, "inputs",
                f"the SQL reads {'.'.join(parts)}, which is not one of the contract's inputs ({listed}): "
                "a transform reads only the products listed in `inputs`",
            )


def load_products(domain: Domain) -> list[Product]:
    misnamed = sorted((domain.path / "products").glob("*.yml"))
    if misnamed:
        stem = misnamed[0].stem
        raise ContractError(misnamed[0], f"{domain.name}.{stem}", None, f"a contract's file ends in .yaml: rename it {stem}.yaml")
    files = sorted((domain.path / "products").glob("*.yaml"))
    products = [load_product(path, domain) for path in files]
    if any(p.dbt for p in products):
        from platform_lib.dbt_project import bind_dbt_products

        products = bind_dbt_products(products)
    return products
