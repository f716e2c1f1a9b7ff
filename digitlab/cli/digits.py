"""``digits list/import/export``: a writer's labelled digits in and out of the database."""

from __future__ import annotations

import argparse

from digitlab.cli.output import emit
from digitlab.store import ModelStore


def digits_db(args: argparse.Namespace):
    """The digits database: ``--digits-db``, else ``$DIGITLAB_DIGITS_DB``, else beside the store."""
    from digitlab.digits_db import DigitsDb, default_db_path

    return DigitsDb(args.digits_db or default_db_path(ModelStore(args.models).root))


def cmd_digits(args: argparse.Namespace) -> int:
    """``digits list | import | export``: the labelled digits in the database."""
    from digitlab.digit_files import export_digits, import_digits

    db = digits_db(args)
    if args.action == "import":
        count = import_digits(db, args.file, args.writer)
        emit(args, {"imported": count, "writer": args.writer.strip(), "database": str(db.path)},
              f"imported {count} digits for {args.writer.strip()!r} into {db.path}")
    elif args.action == "export":
        count = export_digits(db, args.writer, args.file)
        emit(args, {"exported": count, "writer": args.writer.strip(), "file": str(args.file)},
              f"exported {count} digits of {args.writer.strip()!r} to {args.file}")
    else:
        counts = db.counts()
        payload = [{"writer": writer, "digits": sum(row), "per_digit": row} for writer, row in counts.items()]
        width = max([len("writer"), *map(len, counts)])
        header = f"{'writer':<{width}}" + "".join(f"{digit:>5}" for digit in range(10)) + "  total"
        rows = [f"{writer:<{width}}" + "".join(f"{count:>5}" for count in row) + f"  {sum(row):>5}"
                for writer, row in counts.items()]
        emit(args, payload, "\n".join([header, *rows]) if counts else f"no labelled digits in {db.path} yet")
    return 0


DIGITS_DB_HELP = "labelled-digits database (default: $DIGITLAB_DIGITS_DB or digits.sqlite in the store)"
