"""Translations: gettext catalogs (zh_CN, en_US) shipped inside the package.

``_("text")`` translates with the language chosen by :func:`set_language`
(``--lang``, cfg.yaml ``lang``, else the OS UI language). English is the
source language: a missing catalog or entry shows the English text.
Catalogs are ``locale/<lang>/LC_MESSAGES/imageferry.mo`` beside this module (in a wheel,
a checkout and a PyInstaller bundle alike); read with a plain ``open``, since
``importlib.resources`` alone costs more start-up time than the whole catalog.
"""

from __future__ import annotations

import gettext
import os
import sys

LANGUAGES = ("zh_CN", "en_US")
DOMAIN = "imageferry"
_current: gettext.NullTranslations = gettext.NullTranslations()
_language = "en_US"
_HERE = os.path.dirname(os.path.abspath(__file__))


def os_language() -> str:
    """The OS UI language as zh_CN or en_US (Windows: GetUserDefaultUILanguage)."""
    if sys.platform == "win32":
        try:
            import ctypes

            lang_id = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
            return "zh_CN" if lang_id & 0x3FF == 0x04 else "en_US"  # LANG_CHINESE
        except (AttributeError, OSError):
            pass
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(name, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en_US"
    import locale  # only when no environment variable tells

    code = locale.getlocale()[0] or ""
    return "zh_CN" if code.lower().startswith(("zh", "chinese")) else "en_US"


def set_language(lang: str | None) -> str:
    """Use ``lang`` (zh_CN / en_US; None: the OS language). Returns the one in use."""
    global _current, _language
    chosen = lang if lang in LANGUAGES else os_language()
    _current = _load(chosen)
    _language = chosen
    return chosen


def language() -> str:
    return _language


def _load(lang: str) -> gettext.NullTranslations:
    try:
        path = os.path.join(_HERE, "locale", lang, "LC_MESSAGES", f"{DOMAIN}.mo")
        with open(path, "rb") as f:
            return gettext.GNUTranslations(f)
    except (FileNotFoundError, OSError):
        return gettext.NullTranslations()


def _(text: str) -> str:
    """``text`` in the current language."""
    return _current.gettext(text)


def state_word(state: str) -> str:
    """An image's, blob's or target's state (``copied``, ``same`` …) in the current language."""
    words = {
        "copied": _("copied"),
        "skipped": _("skipped"),
        "failed": _("failed"),
        "cancelled": _("cancelled"),
        "mounted": _("mounted"),
        "same": _("same"),
        "differs": _("differs"),
        "missing": _("missing"),
        "error": _("error"),
    }
    return words.get(state, state)
