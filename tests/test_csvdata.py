"""CSV input through pandas (aekit.csvdata); the older CSV cases live in test_data.py and test_fuzz.py."""

import numpy as np
import pandas as pd
import pytest

from aekit import load_array
from aekit._utils import DataFormatError, InputError
from aekit.data import load_rows


def test_quoted_cells_may_hold_the_delimiter(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('a,"b,c",label\n0.5,1,"x, y"\n1.5,2, "z,w"\n')
    X, y = load_array(p, label_column="label")
    assert X.tolist() == [[0.5, 1.0], [1.5, 2.0]] and list(y) == ["x, y", "z,w"]
    p.write_text('a,"b,c"\n0.5,1\n1.5,2\n')
    X, y = load_array(p, label_column="b,c")  # a header name holding the delimiter
    assert X.tolist() == [[0.5], [1.5]] and list(y) == [1, 2]
    p.write_text('a;b;label\n"0,5";1;"p;q"\n')  # quoted cells with ';' (and a decimal comma: text, refused)
    with pytest.raises(DataFormatError, match="could not convert string '0,5'"):
        load_array(p, label_column="label")


def test_a_text_column_is_refused_with_the_option_that_names_it(tmp_path, capsys):
    """Row ids or labels left among the features: the error names the column and the option that takes it."""
    from aekit.cli import main

    p = tmp_path / "w.csv"
    p.write_text("sample_id,alcohol,ash,cultivar\nW000,1.5,2.0,a\nW001,1.7,2.1,b\nW002,1.1,2.3,a\n")
    with pytest.raises(DataFormatError, match=r"column 0 \('sample_id'\).*pass id_column='sample_id'; else drop") as e:
        load_array(p, label_column="cultivar")
    assert "label_column=" not in str(e.value)  # a label column is given: the text column is not the labels
    with pytest.raises(DataFormatError, match=r"id_column='sample_id'; if it holds the labels, label_column='sample"):
        load_array(p)
    assert main(["train", str(p), "--out", str(tmp_path / "r")]) == 2
    assert "pass --id-column 'sample_id'; if it holds the labels, --label-column 'sample_id'" in capsys.readouterr().err
    X, y = load_array(p, label_column="cultivar", id_column="sample_id")  # the fix works
    assert X.shape == (3, 2) and list(y) == ["a", "b", "a"]
    p.write_text("a,{b}\n1,x\n3,y\n")  # a name the message template cannot hold: the column by its index
    with pytest.raises(DataFormatError, match=r"pass id_column=1; if it holds the labels, label_column=1;"):
        load_array(p)
    p.write_text("a,b\n1,2\n3,x\n5,6\n")  # a stray cell in a number column: no id or label advice
    with pytest.raises(DataFormatError, match="numbers only besides the id and label columns") as e:
        load_array(p)
    assert "id_column" not in str(e.value)


def test_a_frame_written_by_pandas_reads_back(tmp_path, caplog):
    """DataFrame.to_csv() with its defaults: an index column, quoted text labels holding commas."""
    frame = pd.DataFrame({"f1": [0.25, 0.5, 0.75], "f2": [1, 2, 3], "label": ["a, b", "c", "a, b"]}, index=[10, 11, 12])
    frame.to_csv(tmp_path / "f.csv")
    X, y = load_array(tmp_path / "f.csv", label_column="label")
    assert X.tolist() == [[0.25, 1.0], [0.5, 2.0], [0.75, 3.0]] and list(y) == ["a, b", "c", "a, b"]
    assert "first column has no name" in caplog.text


@pytest.mark.parametrize(
    "text, match",
    [
        ("a,b\n1,2\n\n3,abc\n", r"string 'abc' to a number at data row 1 \(counted from 0; line 4\), column 1 \('b'\)"),
        ("a,b\n1,2\n\n3,4,5\n", r"data row 1 \(counted from 0; line 4\) has 3 cells, the first row 2"),
        ("1,2\n3,4\n5\n", r"data row 2 \(counted from 0; line 3\) has 1 cells, the first row 2"),
        ("a,b\n1,2\n3,\n", r"an empty cell at data row 1 \(counted from 0; line 3\), column 1 .*fillna.*SimpleImputer"),
        ('a,b\n1,"2\n3,4\n', r"cannot parse the CSV \(EOF inside string"),
        ("a;b\n1;0,5\n2;-215,85\n", r"string '0,5' .*column 1 \('b'\).*decimal comma.*sep=';', decimal=','"),
        ("a\tb\n1\t0,5\n", r"'0,5' is a number with a comma .*sep='\\t', decimal=','"),
        ('a,b\n1,"1,234"\n', r"'1,234' is a number with a comma .*write the numbers without commas"),
    ],
)
def test_errors_are_one_line_naming_file_and_line(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataFormatError, match=match) as info:
        load_array(p)
    message = str(info.value)
    assert message.startswith(f"{p}: ") and "\n" not in message and "Error tokenizing" not in message


def test_blank_separated_columns(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("  1   2.5 3\n\n4 5  6  \n")  # blanks delimit when the first line has no ',', ';' or tab
    X, y = load_array(p)
    assert y is None and X.tolist() == [[1.0, 2.5, 3.0], [4.0, 5.0, 6.0]]


def test_ids_that_look_like_numbers_keep_their_text(tmp_path):
    # "007" and "7" were both 7, a 20-digit id wrapped around int64, "7" became "7.0" beside "7.5"
    from aekit.data import load_rows

    p = tmp_path / "ids.csv"
    p.write_text("id,a\n007,1\n7,2\n0012345678901234567890,3\n7.5,4\n-0,5\n")
    assert load_rows(p, id_column="id")[2].tolist() == ["007", "7", "0012345678901234567890", "7.5", "-0"]
    p.write_text("id,a\n99999999999999999999,1\n-7,2\n")  # beyond int64: text
    assert load_rows(p, id_column="id")[2].tolist() == ["99999999999999999999", "-7"]
    p.write_text("id,a\n9223372036854775807,1\n-7,2\n")  # 19 digits: text too (the bound is kept simple)
    assert load_rows(p, id_column="id")[2].tolist() == ["9223372036854775807", "-7"]
    p.write_text("id,a\n12, 1\n-7,2\n0,3\n")  # integers written as integers stay numbers
    ids = load_rows(p, id_column="id")[2]
    assert ids.dtype == np.int64 and ids.tolist() == [12, -7, 0]


@pytest.mark.parametrize("wide", [False, True])
def test_zero_padded_labels_are_class_names(tmp_path, wide):
    # pandas read "007" and "7" as one class 7, and predictions came back as 7
    extra = ",".join(f"f{j}" for j in range(4100)) if wide else "f0"  # beyond WIDE columns: the other reader
    zeros = ",".join("0" for _ in range(4100)) if wide else "0"
    p = tmp_path / "padded.csv"
    p.write_text(f"label,{extra}\n007,{zeros}\n7,{zeros}\n010,{zeros}\n,{zeros}\n")
    y = load_array(p, label_column="label")[1]
    assert y.tolist() == ["007", "7", "010", "-1"]
    p.write_text(f"label,{extra}\n7,{zeros}\n0,{zeros}\n0.5,{zeros}\n-1,{zeros}\n")  # no padding: numbers
    y = load_array(p, label_column="label")[1]
    assert y.dtype == np.float64 and y.tolist() == [7.0, 0.0, 0.5, -1.0]
    p.write_text(f"label,{extra}\n7,{zeros}\n0,{zeros}\n,{zeros}\n")
    y = load_array(p, label_column="label")[1]
    assert y.dtype == np.int64 and y.tolist() == [7, 0, -1]


def test_row_ids_from_an_id_column_or_a_pandas_index(tmp_path, caplog):
    from aekit.data import load_rows

    p = tmp_path / "ids.csv"
    p.write_text("name,a,b,kind\nr1,0.5,1,x\nr2,1.5,2,y\n")
    X, y, ids = load_rows(p, label_column="kind", id_column="name")
    assert X.tolist() == [[0.5, 1.0], [1.5, 2.0]] and list(y) == ["x", "y"] and list(ids) == ["r1", "r2"]
    X, _, ids = load_rows(p, label_column=-1, id_column=0)  # by index, as --label-column
    assert X.shape == (2, 2) and list(ids) == ["r1", "r2"]
    frame = pd.DataFrame({"f": [0.25, 0.5], "g": ["u", "v"]}, index=[10, 11])
    frame.to_csv(tmp_path / "f.csv")  # a pandas index: the ids
    X, _, ids = load_rows(tmp_path / "f.csv", id_column=None, label_column="g")
    assert X.tolist() == [[0.25], [0.5]] and ids.tolist() == [10, 11] and "as the rows' ids" in caplog.text
    X, y, ids = load_rows(tmp_path / "f.csv", id_column="g")  # named: it wins, the index is still no feature
    assert X.tolist() == [[0.25], [0.5]] and y is None and ids.tolist() == ["u", "v"]
    with pytest.raises(InputError, match="id_column='kind' and label_column='kind' name the same column"):
        load_rows(p, label_column="kind", id_column="kind")
    with pytest.raises(InputError, match="id_column='nope' is not a column of") as info:
        load_rows(p, id_column="nope")
    assert info.value.param == "id_column"
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(InputError, match="id_column=0 applies to CSV files only"):
        load_rows(tmp_path / "x.npy", id_column=0)
    assert load_rows(tmp_path / "x.npy")[2] is None  # no ids: the callers number the rows


def test_a_file_without_header_read_for_a_named_model_says_so(tmp_path, caplog):
    from aekit.csvdata import read_csv_rows

    p = tmp_path / "rows.csv"
    p.write_text("0.1,0.2\n0.3,0.4\n")
    X, _, _, _ = read_csv_rows(p, None, max_bytes=10**6, keep=["height", "width"])
    assert X.shape == (2, 2) and "no header row: its 2 columns are read by position" in caplog.text
    assert "'height', 'width'" in caplog.text


def test_a_model_naming_a_feature_twice_cannot_pick_columns_by_name(tmp_path):
    # scikit-learn before 1.9 fitted DataFrames with repeated column names; such a model loads, but picking
    # a CSV's columns by its names would read one column into both inputs
    from aekit.csvdata import read_csv_rows

    p = tmp_path / "rows.csv"
    p.write_text("a,b\n0.1,0.2\n")
    with pytest.raises(DataFormatError, match=r"rows\.csv: the model names its feature 'a' more than once"):
        read_csv_rows(p, None, max_bytes=10**6, keep=["a", "a"])


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".tsv.xz"])
def test_compressed_csvs_read_as_the_plain_file(tmp_path, suffix):
    frame = pd.DataFrame({"id": ["r0", "r1", "r2"], "f1": [0.5, 1.5, 2.5], "f2": [1, 2, 3], "y": ["a", "", "b"]})
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / f"packed{suffix}", index=False, sep="\t" if ".tsv" in suffix else ",")
    plain = load_rows(tmp_path / "plain.csv", label_column="y", id_column="id", with_names=True)
    packed = load_rows(tmp_path / f"packed{suffix}", label_column="y", id_column="id", with_names=True)
    for a, b in zip(plain, packed, strict=True):
        assert np.array_equal(a, b)


def test_a_compressed_csv_is_held_to_the_byte_limit_as_it_is_read(tmp_path):
    import gzip

    from aekit.csvdata import read_csv_rows

    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wt") as fh:  # 40 kB of rows in a file of a few hundred bytes
        fh.write("a,b\n" + "0,0\n" * 10_000)
    with pytest.raises(DataFormatError, match=r"^\S*bomb.csv.gz: holds more than 8,192 bytes of CSV once decompressed"):
        read_csv_rows(path, None, max_bytes=8192)  # (^: the message itself, not wrapped in a parse error's)
    with pytest.raises(DataFormatError, match=r"^\S*bomb.csv.gz: holds more than 8,192 bytes"):
        read_csv_rows(path, None, max_bytes=8192, max_rows=5000)  # a row limit is no byte limit
    one = tmp_path / "one.csv.gz"
    with gzip.open(one, "wt") as fh:  # one row of 3,000,000 cells: nrows=1 would read it whole
        fh.write("0," * 2_999_999 + "0\n")
    with pytest.raises(DataFormatError, match=r"^\S*one.csv.gz: holds more than 10,000 bytes"):
        read_csv_rows(one, None, max_bytes=10_000, max_rows=1)
    plain = tmp_path / "plain.csv"  # a plain file larger than the limit: its first rows are read, no more
    plain.write_text("a,b\n1,2\n3,4\n" + "5,6\n" * 150_000)  # 600 kB (limits are GB: reads are buffered)
    assert read_csv_rows(plain, None, max_bytes=400_000, max_rows=2)[0].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(DataFormatError, match=r"holds more than 400,000 bytes of CSV before the rows asked for"):
        read_csv_rows(plain, None, max_bytes=400_000, max_rows=140_000)
    assert read_csv_rows(path, None, max_bytes=1 << 20)[0].shape == (10_000, 2)
    (tmp_path / "damaged.csv.gz").write_bytes(b"a,b\n1,2\n")  # not gzip
    with pytest.raises(DataFormatError, match=r"damaged.csv.gz: cannot decompress it .*damaged or not .gz"):
        load_array(tmp_path / "damaged.csv.gz")


def test_max_rows_parses_no_row_after_them(tmp_path, caplog):
    lines = ["a,b,y"] + [f"{i},{i / 2},{'' if i == 3 else 'c'}" for i in range(50)] + ["x,,c"]  # bad past 10
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    X, y, _ = load_rows(tmp_path / "d.csv", label_column="y", max_rows=10)
    assert X.shape == (10, 2) and list(y).count("-1") == 1
    assert "1 rows without a label" in caplog.text or "1 row without a label" in caplog.text
    with pytest.raises(DataFormatError, match="data row 50"):
        load_rows(tmp_path / "d.csv", label_column="y")  # whole: the bad row is met
    wide = ",".join(f"f{j}" for j in range(5000))  # the wide (numpy) reader, too
    (tmp_path / "w.csv").write_text(wide + "\n" + "\n".join(",".join(["1"] * 5000) for _ in range(5)) + "\nx\n")
    assert load_rows(tmp_path / "w.csv", max_rows=5)[0].shape == (5, 5000)


def test_a_compressed_file_that_is_no_csv_is_named_so(tmp_path):
    (tmp_path / "x.npy.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(InputError, match=r"x\.npy\.gz: a compressed \.npy; only CSVs are read compressed"):
        load_array(tmp_path / "x.npy.gz")


def test_formats_pandas_reads_are_refused_with_the_conversion(tmp_path):
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match=r"\.parquet files are not read; convert it with pandas, e\.g\. pd\.read_"):
        load_array(tmp_path / "t.parquet")


def test_cli_limit_reads_only_those_rows_and_stream_says_a_csv_is_read_whole(tmp_path, capsys):
    from aekit.cli import main

    rows = [f"{i % 3},{(i * 7) % 5},{i % 2}" for i in range(40)]
    (tmp_path / "d.csv").write_text("a,b,y\n" + "\n".join(rows) + "\nx,,1\n")  # a bad row after 40
    args = ["--label-column", "y", "--epochs", "1", "--hidden-layer-sizes", "4", "--limit", "40", "--data-loading"]
    assert main(["train", str(tmp_path / "d.csv"), "--out", str(tmp_path / "r"), *args, "stream"]) == 0
    assert "is a CSV, parsed whole into memory first" in capsys.readouterr().err
    model = str(tmp_path / "r" / "model.safetensors")
    assert main(["embed", model, str(tmp_path / "d.csv"), "--limit", "5", "--out", str(tmp_path / "z.csv")]) == 0
    assert len((tmp_path / "z.csv").read_text().splitlines()) == 6
    assert main(["embed", model, str(tmp_path / "d.csv"), "--out", str(tmp_path / "all.csv")]) == 2
    assert "data row 40" in capsys.readouterr().err  # read whole, the bad row is met
