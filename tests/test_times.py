"""tinygrad_rnn/times.py: time columns sort and compare as numbers or dates, and a regular step continues.

The oracle writes each calendar with Python's `datetime` (not NumPy's datetime64, which times.py uses):
a series cut short must be continued into exactly the values that were cut off."""
import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn import ConfigError
from tinygrad_rnn.times import TimeColumn, TimeKey, composite_continuation, continuation


def months_after(year, month, k):
    index = year * 12 + month - 1 + k
    return index // 12, index % 12 + 1


@settings(max_examples=60, deadline=None)
@given(year=st.integers(1800, 2200), month=st.integers(1, 12), every=st.sampled_from([1, 2, 3, 6, 12]),
       n=st.integers(2, 30), cut=st.integers(1, 10), day=st.sampled_from([None, 1, 15, 28]))
def test_monthly_quarterly_and_yearly_dates_continue_where_they_were_cut(year, month, every, n, cut, day):
    def written(k):
        y, m = months_after(year, month, k * every)
        return f"{y:04d}-{m:02d}" + (f"-{day:02d}" if day else "")
    series = [written(k) for k in range(n + cut)]
    assert continuation(series[:n], cut) == series[n:]


@settings(max_examples=60, deadline=None)
@given(start=st.dates(datetime.date(1900, 1, 1), datetime.date(2100, 1, 1)), every=st.sampled_from([1, 7, 10]),
       n=st.integers(3, 30), cut=st.integers(1, 10))
def test_daily_and_weekly_dates_continue_where_they_were_cut(start, every, n, cut):
    series = [(start + datetime.timedelta(days=every * k)).isoformat() for k in range(n + cut)]
    if every == 1 or len({d[8:] for d in series[:n]}) > 1:   # (a 10-day step may happen to look monthly: skip)
        assert continuation(series[:n], cut) == series[n:]


def test_month_ends_and_numbers_continue_and_irregular_steps_do_not():
    assert continuation(["2005-01-31", "2005-02-28", "2005-03-31"], 3) == ["2005-04-30", "2005-05-31", "2005-06-30"]
    assert continuation(["2004-03-31", "2004-06-30"], 2) == ["2004-09-30", "2004-12-31"]
    assert continuation(["1", "2", "3"], 2) == ["4", "5"]
    assert continuation(["1950.5", "1951.0"], 2) == ["1951.5", "1952.0"]
    assert continuation(["2000", "2005", "2010"], 1) == ["2015"]
    for irregular in (["1", "2", "4"], ["2005-01-01", "2005-01-02", "2005-01-04"], ["a", "b"], ["3"], ["3", "2"]):
        assert continuation(irregular, 2) is None, irregular


def test_year_and_quarter_continue_once_a_whole_cycle_is_seen():
    quarters = [f"{2000 + q // 4}+{q % 4 + 1}" for q in range(12)]
    assert composite_continuation(quarters[:9], 3) == quarters[9:]
    assert composite_continuation(["2008+1", "2008+2"], 2) is None        # the cycle's length is unknown
    assert composite_continuation(["2008+x", "2009+1"], 2) is None


def test_dates_compare_as_dates_numbers_as_numbers_and_text_has_no_cutoff():
    dates = TimeColumn(np.array(["2000-9", "2000-10", "2001-01-15"]))
    assert dates.kind == "date" and list(np.argsort(dates.key)) == [0, 1, 2]   # as text, "2000-10" < "2000-9"
    assert dates.value_key("2000-10") == dates.key[1] and dates.value_key("2001") < dates.key[2]
    numbers = TimeColumn(np.array(["9", "10", "100"]))
    assert numbers.kind == "number" and list(np.argsort(numbers.key)) == [0, 1, 2]
    with pytest.raises(ConfigError, match="holds numbers; '2005-01' is not one"):
        numbers.value_key("2005-01")
    with pytest.raises(ConfigError, match="holds ISO dates; 'May' is not one"):
        dates.value_key("May")
    with pytest.raises(ConfigError, match="neither numbers nor ISO dates"):
        TimeColumn(np.array(["spring", "summer"]), "season").value_key("summer")


def test_a_composite_cutoff_compares_its_parts_in_order():
    key = TimeKey([np.array(["1999", "2000", "2000", "2000", "2001"]), np.array(["4", "1", "2", "3", "1"])],
                  ["year", "quarter"])
    assert key.at_least("2000+2").tolist() == [False, False, True, True, True]
    assert key.at_least("2000").tolist() == [False, True, True, True, True]     # the year alone
    assert list(key.order(np.zeros(5))) == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="has 3 parts, the time key 2"):
        key.at_least("2000+1+1")
