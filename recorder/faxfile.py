"""Fax file conversions: received TIFF -> PDF (tiff2pdf, libtiff-tools) and PDF -> fax TIFF (Ghostscript,
G3 at the fax resolution 204x196 dpi, 1728 pixels wide). Bad input raises FaxFileError with the reason and
never touches the source file.
"""
from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

from core import diskspace, processes

TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
FAX_DEVICE = "tiffg3"  # Group 3 is what every fax machine and spandsp's txfax accept
FAX_RESOLUTION = "204x196"
FAX_PAGE_PIXELS = "1728x2292"  # A4 at 204x196 dpi, the standard fax line width
MAX_PAGES = 500


class FaxFileError(ValueError):
    """A fax document is missing, empty, corrupt, or could not be converted."""


class FaxDiskFull(FaxFileError):
    """The fax folder's disk is full: the file was not written (nothing cut is left behind)."""


# A fax page runs to tens of kilobytes; below this the fax folder counts as full.
MIN_FREE = 4 * diskspace.MB


def check_tiff(path: Path) -> int:
    """Validate a TIFF's header and page chain; returns the page count."""
    data = _read(path, "TIFF")
    if data[:4] not in TIFF_MAGIC:
        raise FaxFileError("not a TIFF file (bad header) / 不是 TIFF 文件")
    endian = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(endian + "I", data[4:8])[0]
    pages, seen = 0, set()
    while offset:
        if offset in seen or offset + 2 > len(data):
            raise FaxFileError("corrupt TIFF (directory outside the file) / TIFF 文件已损坏")
        seen.add(offset)
        count = struct.unpack(endian + "H", data[offset:offset + 2])[0]
        end = offset + 2 + count * 12
        if count == 0 or end + 4 > len(data):
            raise FaxFileError("corrupt TIFF (truncated directory) / TIFF 文件已损坏")
        pages += 1
        if pages > MAX_PAGES:
            raise FaxFileError(f"TIFF has more than {MAX_PAGES} pages / 页数过多")
        offset = struct.unpack(endian + "I", data[end:end + 4])[0]
    if pages == 0:
        raise FaxFileError("TIFF has no pages / TIFF 没有页面")
    return pages


def check_pdf(path: Path) -> None:
    """Validate that a file looks like a PDF document."""
    data = _read(path, "PDF", head=1024)
    if b"%PDF-" not in data[:1024]:
        raise FaxFileError("not a PDF file / 不是 PDF 文件")


def _read(path: Path, what: str, head: int | None = None) -> bytes:
    try:
        size = os.path.getsize(path)
    except OSError:
        raise FaxFileError(f"{what} file missing / 文件不存在: {Path(path).name}") from None
    if size == 0:
        raise FaxFileError(f"{what} file is empty (0 bytes) / 文件为空")
    with open(path, "rb") as handle:
        return handle.read(head) if head else handle.read()


def _run(command: list[str], target: Path, temporary: Path, timeout: float, tool: str) -> None:
    try:
        done = processes.run(command, capture_output=True, text=True, timeout=timeout)  # no fork of the server
    except subprocess.TimeoutExpired:
        temporary.unlink(missing_ok=True)
        raise FaxFileError(f"{tool} did not finish within {timeout:.0f} s / 转换超时") from None
    except FileNotFoundError:
        raise FaxFileError(f"{tool} is not installed (scripts/setup-system.sh installs it)") from None
    full = diskspace.is_disk_full(OSError(f"{done.stderr}{done.stdout}"))  # some tools say so and exit 0
    if done.returncode != 0 or full or not temporary.exists() or temporary.stat().st_size == 0:
        temporary.unlink(missing_ok=True)
        output = (done.stderr or done.stdout).strip()
        message = output.splitlines()
        if full or _disk_full(target.parent):
            raise FaxDiskFull(f"磁盘已满 / disk full: {tool} could not write {target.name}")
        raise FaxFileError(f"{tool} failed / 转换失败: {message[-1][:200] if message else done.returncode}")
    os.replace(temporary, target)


def _disk_full(folder: Path) -> bool:
    try:
        return diskspace.free_bytes(folder) < MIN_FREE
    except OSError:
        return False


def tiff_to_pdf(tiff: Path, pdf: Path, timeout: float = 120.0) -> int:
    """Convert a received fax to PDF; returns its page count."""
    pages = check_tiff(tiff)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    temporary = pdf.with_name(f".{pdf.name}.part")
    _run(["tiff2pdf", "-o", str(temporary), str(tiff)], pdf, temporary, timeout, "tiff2pdf")
    return pages


def pdf_to_tiff(pdf: Path, tiff: Path, timeout: float = 180.0) -> int:
    """Render a PDF as a G3 fax TIFF at 204x196 dpi, fitted to the fax page; returns its page count."""
    check_pdf(pdf)
    tiff.parent.mkdir(parents=True, exist_ok=True)
    temporary = tiff.with_name(f".{tiff.name}.part")
    _run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", f"-sDEVICE={FAX_DEVICE}", f"-r{FAX_RESOLUTION}",
          f"-g{FAX_PAGE_PIXELS}", "-dPDFFitPage", "-dFIXEDMEDIA", f"-sOutputFile={temporary}", str(pdf)],
         tiff, temporary, timeout, "ghostscript")
    return check_tiff(tiff)
