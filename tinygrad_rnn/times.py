"""Time columns of a user's file: how their values sort, compare with a cutoff, and continue.

A time column holds numbers (1, 2, 3 or 1950.5), ISO dates (`1949-01`, `2005-03-31`,
`2005-03-31T12:00`) or other text. Numbers compare as numbers and dates as dates, so that `1949-10`
comes after `1949-9`'s month and 10 after 9; other text compares as text. A composite key
(`time=year+quarter`) sorts by its columns in order, the first deciding.

    axis = TimeColumn(["1949-01", "1949-02", "1949-03"])
    axis.key                   # numbers that sort and compare: days since 1970 for dates
    axis.at_least("1949-02")   # [False, True, True]
    continuation(["1949-01", "1949-02", "1949-03"], 2)   # ["1949-04", "1949-05"]: monthly, continued

`continuation` (and `composite_continuation`, for `year+quarter`) recognises a regular step —
integer or any constant number, and for dates daily, weekly or any constant number of days,
monthly, quarterly or yearly — and continues it; where the step is irregular it answers None, and
the caller numbers the steps 1…K instead.
"""
import re

import numpy as np

from .errors import ConfigError

# 2005-01, 2005-01-31, 2005-01-31T12:00[:00[.5]] (a space for the T, and one-digit months and days, allowed)
ISO_DATE = re.compile(r"^\d{4}-\d{1,2}(-\d{1,2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?$")


class TimeColumn:
    """One column's values (a (n,) str array) read as a time: `kind` is "number", "date" or "other" (text),
    and `key` an array that sorts like the times (float64 for numbers and dates, the text itself else)."""

    def __init__(self, text, name="time"):
        self.name, self.text = name, np.asarray(text, dtype=str)
        stripped = self.text
        try:
            try:
                self.key, self.kind = self.text.astype(np.float64), "number"
            except ValueError:   # " 12" reads, where NumPy's parser would not
                stripped = np.char.strip(self.text)
                self.key, self.kind = stripped.astype(np.float64), "number"
            if not np.isfinite(self.key).all():
                raise ValueError
        except ValueError:
            stripped = np.char.strip(self.text)
            if len(stripped) and all(ISO_DATE.match(value) for value in np.unique(stripped)):
                self.key, self.kind = _dates(stripped).astype("datetime64[s]").astype(np.float64) / 86400, "date"
            else:
                self.key, self.kind = stripped, "other"

    def value_key(self, value):
        """A cutoff `value` (as written in an option) on this column's scale; ConfigError where it is not."""
        text = str(value).strip()
        if self.kind == "number":
            try:
                return float(text)
            except ValueError:
                raise ConfigError(f"time column {self.name!r} holds numbers; {text!r} is not one") from None
        if self.kind == "date":
            if not ISO_DATE.match(text) and not re.fullmatch(r"\d{4}", text):
                raise ConfigError(f"time column {self.name!r} holds ISO dates; {text!r} is not one "
                                  "(write it as 2005, 2005-01 or 2005-01-31)")
            return float(_dates(np.array([text])).astype("datetime64[s]").astype(np.float64)[0] / 86400)
        raise ConfigError(f"time column {self.name!r} holds text that is neither numbers nor ISO dates (e.g. "
                          f"{str(self.text[0])!r}); a cutoff needs one of them")


class TimeKey:
    """The time of each row from one or more columns (`year+quarter`): sorting and cutoffs."""

    def __init__(self, columns, names):
        self.columns = [TimeColumn(text, name) for text, name in zip(columns, names)]

    def take(self, rows):
        """The same key for the rows `rows` (an int or bool array), in that order."""
        taken = TimeKey.__new__(TimeKey)
        taken.columns = []
        for column in self.columns:
            part = TimeColumn.__new__(TimeColumn)
            part.name, part.kind, part.text, part.key = column.name, column.kind, column.text[rows], column.key[rows]
            taken.columns.append(part)
        return taken

    def order(self, first):
        """Row order by `first` (the series), then by each time column in turn (np.lexsort's last key first)."""
        return np.lexsort([column.key for column in reversed(self.columns)] + [first])

    def same(self, a, b):
        """Whether rows a and b (int arrays) have the same time."""
        return np.logical_and.reduce([column.key[a] == column.key[b] for column in self.columns])

    def at_least(self, value):
        """(n,) bool: rows whose time is ≥ `value`; a composite key's value joins its parts with `+`
        (`2005+3`), compared in order, and a shorter value compares its first columns only."""
        parts = str(value).split("+")
        if len(parts) > len(self.columns):
            raise ConfigError(f"cutoff {value!r} has {len(parts)} parts, the time key {len(self.columns)} "
                              f"({'+'.join(c.name for c in self.columns)})")
        result = np.ones(len(self.columns[0].key), bool)    # equal on every part given: ≥
        for column, part in reversed(list(zip(self.columns, parts))):
            key, cut = column.key, column.value_key(part)
            result = (key > cut) | ((key == cut) & result)
        return result


def _dates(text):
    """ISO date strings → datetime64 at their finest unit (a bare year counts as its first day)."""
    try:
        return np.array([_padded(value) for value in text], dtype="datetime64")
    except ValueError as e:
        raise ConfigError(f"not a valid date: {e}") from None


def _padded(value):
    """2005-1-5 12:00 → 2005-01-05T12:00, as NumPy reads it."""
    date, _, clock = value.replace(" ", "T").partition("T")
    date = "-".join(part.zfill(2) for part in date.split("-"))
    return date + ("T" + clock if clock else "")


def continuation(times, steps):
    """The `steps` time values after `times` (one series' times, ordered, as str), continuing their
    regular step; None where there is none (fewer than two values, or steps that differ)."""
    column = TimeColumn(times)
    if len(column.text) < 2 or column.kind == "other":
        return None
    if column.kind == "number":
        values = column.key
        step = np.diff(values)
        if step[0] <= 0 or not np.allclose(step, step[0], rtol=1e-9, atol=1e-12):
            return None
        following = values[-1] + step[0] * np.arange(1, steps + 1)
        integral = all(re.fullmatch(r"\s*[+-]?\d+\s*", t) for t in column.text)
        return [str(int(round(v))) if integral else repr(float(np.round(v, 10))) for v in following]
    dates = _dates(np.char.strip(column.text))
    unit = np.datetime_data(dates.dtype)[0]
    months = dates.astype("datetime64[M]")
    offset = dates - months.astype(dates.dtype)         # the time within the month: the same in every row?
    month_step = np.diff(months.astype(np.int64))
    if (offset == offset[0]).all() and month_step[0] > 0 and (month_step == month_step[0]).all():
        following = months[-1] + month_step[0] * np.arange(1, steps + 1)   # monthly, quarterly, yearly
        return [str(np.datetime_as_string(m.astype(dates.dtype) + offset[0], unit=unit)) for m in following]
    days = dates.astype("datetime64[D]")
    month_ends = (days == dates).all() and ((days + 1).astype("datetime64[M]") != months).all()
    if month_ends and month_step[0] > 0 and (month_step == month_step[0]).all():   # 01-31, 02-28, 03-31...
        following = months[-1] + month_step[0] * np.arange(1, steps + 1) + 1   # the month after, less a day
        return [str(np.datetime_as_string(m.astype(dates.dtype) - 1, unit=unit)) for m in following]
    step = np.diff(dates)
    if step[0] > np.timedelta64(0) and (step == step[0]).all():            # daily, weekly, every n days
        return [str(np.datetime_as_string(dates[-1] + step[0] * k, unit=unit)) for k in range(1, steps + 1)]
    return None


def composite_continuation(times, steps):
    """`continuation` for a two-column key written `major+minor` (`2009+3`: year and quarter, or year
    and month) whose minor part counts whole numbers lo…hi within each major one: the series must show
    every minor value, and step regularly through major·P + minor (P = hi − lo + 1); None otherwise."""
    try:
        pairs = np.array([[int(part) for part in str(t).split("+")] for t in times])
    except ValueError:
        return None
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) < 2:
        return None
    lo, hi = pairs[:, 1].min(), pairs[:, 1].max()
    period = hi - lo + 1
    if len(np.unique(pairs[:, 1])) != period or len(np.unique(pairs[:, 0])) < 2:   # a whole cycle, and a wrap
        return None
    ordinal = pairs[:, 0] * period + pairs[:, 1] - lo
    step = np.diff(ordinal)
    if step[0] <= 0 or (step != step[0]).any():
        return None
    following = ordinal[-1] + step[0] * np.arange(1, steps + 1)
    return [f"{o // period}+{o % period + lo}" for o in following]

