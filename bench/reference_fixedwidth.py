"""Hand-coded writers and readers for the two shipped fixed-width layouts.

The yardstick for bench/bench_fixedwidth.py: what a developer would write for ONE layout
with f-strings and slicing — no layout file, no validation beyond what formatting and
int()/date() do on their own. Each produces exactly the bytes the declarative engine
produces for the same records (the benchmark checks that before timing anything).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, time
from typing import IO, Any

BE_FILLER_HEADER = " " * 88
BE_FILLER_DETAIL = " " * 2


def write_bancoestado(records: Iterable[tuple[str, Mapping[str, Any]]], out: IO[bytes]) -> int:
    lines = []
    n = 0
    for kind, v in records:
        n += 1
        if kind == "detail":
            # Dates and times by their parts: about twice as fast as `{d:%Y%m%d}` (strftime),
            # which is what the generated code does too; the yardstick should be the fast way.
            pd, pt, ad = v["paid_date"], v["paid_time"], v["accounting_date"]
            lines.append(
                f"2{v['rut']:09d}{v['rut_dv']:<1}{v['customer_name']:<40}{v['debt_id']:<20}"
                f"{v['debt_amount']:013d}{v['debts_in_payment']:02d}{v['payment_amount']:013d}"
                f"{pd.year:04d}{pd.month:02d}{pd.day:02d}"
                f"{pt.hour:02d}{pt.minute:02d}{pt.second:02d}{v['channel']:<20}"
                f"{v['transaction_id']:<40}{v['convenio']:<10}"
                f"{ad.year:04d}{ad.month:02d}{ad.day:02d}"
                f"{v['sequence']:07d}{BE_FILLER_DETAIL}\r\n"
            )
        elif kind == "header":
            lines.append(
                f"1{v['company_rut']:09d}{v['company_rut_dv']:<1}{v['company_name']:<40}"
                f"{v['convenio']:<10}{v['accounting_date']:%Y%m%d}{v['generated_date']:%Y%m%d}"
                f"{v['generated_time']:%H%M%S}{v['record_count']:07d}{v['payment_count']:07d}"
                f"{v['total_amount']:015d}{BE_FILLER_HEADER}\r\n"
            )
        else:
            raise ValueError(kind)
        if len(lines) >= 2048:
            out.write("".join(lines).encode("latin-1"))
            lines.clear()
    out.write("".join(lines).encode("latin-1"))
    return n


def read_bancoestado(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    for raw in stream:
        line = raw.decode("latin-1")
        if len(line) != 202:
            raise ValueError(f"bad line length {len(line)}")
        kind = line[0]
        if kind == "2":
            yield (
                "detail",
                {
                    "rut": int(line[1:10]),
                    "rut_dv": line[10:11].rstrip(),
                    "customer_name": line[11:51].rstrip(),
                    "debt_id": line[51:71].rstrip(),
                    "debt_amount": int(line[71:84]),
                    "debts_in_payment": int(line[84:86]),
                    "payment_amount": int(line[86:99]),
                    "paid_date": date(int(line[99:103]), int(line[103:105]), int(line[105:107])),
                    "paid_time": time(int(line[107:109]), int(line[109:111]), int(line[111:113])),
                    "channel": line[113:133].rstrip(),
                    "transaction_id": line[133:173].rstrip(),
                    "convenio": line[173:183].rstrip(),
                    "accounting_date": date(
                        int(line[183:187]), int(line[187:189]), int(line[189:191])
                    ),
                    "sequence": int(line[191:198]),
                },
            )
        elif kind == "1":
            yield (
                "header",
                {
                    "company_rut": int(line[1:10]),
                    "company_rut_dv": line[10:11].rstrip(),
                    "company_name": line[11:51].rstrip(),
                    "convenio": line[51:61].rstrip(),
                    "accounting_date": date(int(line[61:65]), int(line[65:67]), int(line[67:69])),
                    "generated_date": date(int(line[69:73]), int(line[73:75]), int(line[75:77])),
                    "generated_time": time(int(line[77:79]), int(line[79:81]), int(line[81:83])),
                    "record_count": int(line[83:90]),
                    "payment_count": int(line[90:97]),
                    "total_amount": int(line[97:112]),
                },
            )
        else:
            raise ValueError(f"unknown record {kind!r}")


AS_R01 = " " * 107
AS_R05 = " " * 143
AS_R06 = " " * 65
AS_R08 = " " * 129
AS_R09 = " " * 133


def write_asobancaria(records: Iterable[tuple[str, Mapping[str, Any]]], out: IO[bytes]) -> int:
    lines = []
    n = 0
    for kind, v in records:
        n += 1
        if kind == "06":
            cause = v.get("return_cause")
            lines.append(
                f"06{v['reference']:0>48}{v['amount']:014d}{v['payment_origin']:02d}"
                f"{v['payment_method']:02d}{v['operation_number']:06d}"
                f"{v['authorization_number']:06d}{v['debited_bank_code']:03d}"
                f"{v['branch_code']:04d}{v['sequence']:07d}"
                f"{'   ' if cause is None else format(cause, '03d')}{AS_R06}\r\n"
            )
        elif kind == "05":
            lines.append(f"05{v['service_code']:013d}{v['lot_number']:04d}{AS_R05}\r\n")
        elif kind == "08":
            lines.append(
                f"08{v['detail_count']:09d}{v['total_amount']:018d}{v['lot_number']:04d}{AS_R08}\r\n"
            )
        elif kind == "01":
            lines.append(
                f"01{v['biller_nit']:010d}{v['collection_date']:%Y%m%d}{v['bank_code']:03d}"
                f"{v['account_number']:017d}{v['file_date']:%Y%m%d}{v['file_time']:%H%M}"
                f"{v['file_modifier']:<1}{v['account_type']:02d}{AS_R01}\r\n"
            )
        elif kind == "09":
            lines.append(f"09{v['detail_count']:09d}{v['total_amount']:018d}{AS_R09}\r\n")
        else:
            raise ValueError(kind)
        if len(lines) >= 2048:
            out.write("".join(lines).encode("latin-1"))
            lines.clear()
    out.write("".join(lines).encode("latin-1"))
    return n


def read_asobancaria(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    for raw in stream:
        line = raw.decode("latin-1")
        if len(line) != 164:
            raise ValueError(f"bad line length {len(line)}")
        kind = line[0:2]
        if kind == "06":
            cause = line[94:97]
            yield (
                "06",
                {
                    "reference": line[2:50].lstrip("0"),
                    "amount": int(line[50:64]),
                    "payment_origin": int(line[64:66]),
                    "payment_method": int(line[66:68]),
                    "operation_number": int(line[68:74]),
                    "authorization_number": int(line[74:80]),
                    "debited_bank_code": int(line[80:83]),
                    "branch_code": int(line[83:87]),
                    "sequence": int(line[87:94]),
                    "return_cause": None if cause.isspace() else int(cause),
                },
            )
        elif kind == "05":
            yield "05", {"service_code": int(line[2:15]), "lot_number": int(line[15:19])}
        elif kind == "08":
            yield (
                "08",
                {
                    "detail_count": int(line[2:11]),
                    "total_amount": int(line[11:29]),
                    "lot_number": int(line[29:33]),
                },
            )
        elif kind == "01":
            yield (
                "01",
                {
                    "biller_nit": int(line[2:12]),
                    "collection_date": date(int(line[12:16]), int(line[16:18]), int(line[18:20])),
                    "bank_code": int(line[20:23]),
                    "account_number": int(line[23:40]),
                    "file_date": date(int(line[40:44]), int(line[44:46]), int(line[46:48])),
                    "file_time": time(int(line[48:50]), int(line[50:52])),
                    "file_modifier": line[52:53].rstrip(),
                    "account_type": int(line[53:55]),
                },
            )
        elif kind == "09":
            yield "09", {"detail_count": int(line[2:11]), "total_amount": int(line[11:29])}
        else:
            raise ValueError(f"unknown record {kind!r}")
