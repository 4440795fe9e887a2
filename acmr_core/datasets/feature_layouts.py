"""Reading research feature files (.npz / .mat) and recognising how their arrays are laid out.

`read_arrays(path)` gives every numeric or string array in the file under a dotted name: top-level arrays
by their own name, fields of MATLAB structs as `data.X1`, `data.split.ind_train`. MATLAB files are read
with `scipy.io.loadmat(squeeze_me=True, struct_as_record=False)`, .npz files with `allow_pickle=False`;
nothing in a file is ever executed or unpickled (cell arrays of strings are kept, other cells and objects
are listed but not used).

`find_layout(arrays)` returns the roles of the arrays in one of the layouts cross-modal research code ships:

  split arrays     one image, text and label array per split, under many spellings:
                   image_train / text_train / label_train (this project's), I_tr / T_tr / L_tr (the Wikipedia
                   release), train_img / train_txt / train_lab, image_train / tag_train / label_train, X_img_train, ...
  views + indices  two views, labels and index arrays of the training and test items, often in one struct:
                   X1, X2, Y, split.ind_train, split.ind_test (also view1/view2, img/txt, labels/gnd, train_idx, ...)

or raises LayoutError listing what the file holds and the nearest layout, so that an explicit mapping
(`parse_map("image=X1,text=X2,labels=Y,train=split.ind_train,test=split.ind_test")`) can say the rest.
Orientation and numbering are decided later, in acmr_core/datasets/features.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..data import DataError

SPLIT_WORDS = {"train": ("train", "tr", "trn", "training"), "val": ("val", "va", "valid", "validation", "dev"),
               "test": ("test", "te", "tst", "testing")}
KIND_WORDS = {"image": ("image", "images", "img", "imgs", "i", "x_img", "ximg", "v", "visual", "vis", "image_feat",
                        "img_feat", "image_features", "img_fea", "view1", "x1", "x_1", "view_1"),
              "text": ("text", "texts", "txt", "t", "x_txt", "xtxt", "tag", "tags", "text_feat", "txt_feat",
                       "text_features", "txt_fea", "view2", "x2", "x_2", "view_2"),
              "label": ("label", "labels", "lab", "labs", "l", "y", "gnd", "gt", "cat", "category", "categories_id",
                        "target", "targets", "class", "classes")}
INDEX_WORDS = {s: tuple(f"{a}{sep}{w}" for w in words for a in ("ind", "idx", "index", "indices") for sep in ("_", ""))
               + tuple(f"{w}{sep}{a}" for w in words for a in ("ind", "idx", "index", "indices", "set") for sep in ("_", ""))
               + words
               for s, words in SPLIT_WORDS.items()}
NAME_WORDS = ("class_names", "classnames", "categories", "category_names", "names", "label_names", "classes_names")
ROLES = ("image", "text", "labels", "train", "test", "val", "class_names")


class LayoutError(DataError):
    """The file's arrays fit no known layout; the message lists them and the nearest layout."""


# --- reading ---------------------------------------------------------------------------------------------


def _walk(name: str, value, out: dict, skipped: list) -> None:
    from scipy.io.matlab import mat_struct

    if isinstance(value, mat_struct):
        for field in value._fieldnames:
            _walk(f"{name}.{field}", getattr(value, field), out, skipped)
        return
    a = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if a.dtype == object:
        items = list(a.reshape(-1))
        if items and all(isinstance(x, str) for x in items):
            out[name] = np.array(items, dtype=str).reshape(a.shape)
        elif a.size == 1 and isinstance(items[0], mat_struct):
            _walk(name, items[0], out, skipped)
        else:
            skipped.append(f"{name} (cell array or object, not used)")
        return
    if a.dtype.kind in "biuf" or a.dtype.kind in "US":
        out[name] = a
    else:
        skipped.append(f"{name} ({a.dtype}, not used)")


def read_arrays(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """(dotted name -> array, names of things that were skipped) for a .npz or MATLAB .mat file."""
    if not path.is_file():
        raise DataError(f"{path}: file missing")
    out, skipped = {}, []
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except ValueError as e:
            raise DataError(f"{path}: holds pickled objects or is not a valid .npz ({e}); save plain numeric arrays") from None
        except Exception as e:  # noqa: BLE001 - zip errors come in several types
            raise DataError(f"{path}: not a readable .npz file ({e})") from None
        for k, v in raw.items():
            _walk(k, v, out, skipped)
    elif path.suffix.lower() == ".mat":
        import scipy.io

        try:
            mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        except NotImplementedError:
            raise DataError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7 or use .npz") from None
        except Exception as e:  # noqa: BLE001 - scipy raises several types for corrupt files
            raise DataError(f"{path}: not a readable MATLAB file ({e})") from None
        for k, v in mat.items():
            if not k.startswith("__"):
                _walk(k, v, out, skipped)
    else:
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use .npz or .mat")
    return out, skipped


def describe(arrays: dict[str, np.ndarray], skipped=(), limit: int = 30) -> str:
    """'data.X1 float64 (128, 2866), data.Y uint8 (10, 2866), ...' (one line)."""
    parts = [f"{k} {a.dtype} {tuple(a.shape)}" + (" (text, not numbers)" if a.dtype.kind in "US" else "")
             for k, a in list(arrays.items())[:limit]]
    if len(arrays) > limit:
        parts.append(f"... and {len(arrays) - limit} more")
    return ", ".join(parts + list(skipped)) or "no arrays"


# --- finding a layout ------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _by_leaf(arrays: dict) -> dict[str, dict[str, str]]:
    """parent prefix -> {normalised leaf name -> full name}; the leaves of one struct are looked up together."""
    groups: dict[str, dict[str, str]] = {}
    for full in arrays:
        parent, _, leaf = full.rpartition(".")
        groups.setdefault(parent, {})[_norm(leaf)] = full
        if parent:  # 'split.ind_train' also answers as 'ind_train' inside the grandparent struct
            grand, _, mid = parent.rpartition(".")
            groups.setdefault(grand, {}).setdefault(_norm(f"{mid}_{leaf}"), full)
            groups[grand].setdefault(_norm(leaf), full)
    return groups


def _split_names(kind: str, split: str) -> list[str]:
    out = []
    for k in KIND_WORDS[kind]:
        for s in SPLIT_WORDS[split]:
            out += [f"{k}_{s}", f"{s}_{k}", f"{k}{s}", f"{s}{k}"]
    return out


def _first(group: dict[str, str], names) -> str | None:
    return next((group[n] for n in names if n in group), None)


def _numeric(arrays, name):
    return name is not None and arrays[name].dtype.kind in "biuf"


def find_split_layout(arrays: dict) -> tuple[dict, list[str]]:
    """Best {'{kind}_{split}': name} over the file's structs, and what is missing for it."""
    best, best_missing = {}, None
    for group in _by_leaf(arrays).values():
        roles = {}
        for split in SPLIT_WORDS:
            for kind in KIND_WORDS:
                found = _first(group, _split_names(kind, split))
                if _numeric(arrays, found):
                    roles[f"{kind}_{split}"] = found
        missing = [f"{k}_{s}" for s in ("train", "test") for k in KIND_WORDS if f"{k}_{s}" not in roles]
        if best_missing is None or len(roles) > len(best):
            best, best_missing = roles, missing
    return best, best_missing or []


def find_view_layout(arrays: dict) -> tuple[dict, list[str]]:
    """Best {'image','text','labels','train','test'[,'val']}: name over the file's structs, and what is missing."""
    best, best_missing = {}, None
    for group in _by_leaf(arrays).values():
        roles = {}
        for role, words in (("image", KIND_WORDS["image"]), ("text", KIND_WORDS["text"]), ("labels", KIND_WORDS["label"]),
                            ("train", INDEX_WORDS["train"]), ("test", INDEX_WORDS["test"]), ("val", INDEX_WORDS["val"])):
            found = _first(group, words)
            if _numeric(arrays, found) and found not in roles.values():
                roles[role] = found
        missing = [r for r in ("image", "text", "labels", "train", "test") if r not in roles]
        if best_missing is None or len(roles) > len(best):
            best, best_missing = roles, missing
    return best, best_missing or []


def find_class_names(arrays: dict) -> str | None:
    for full, a in arrays.items():
        if _norm(full.rpartition(".")[2]) in NAME_WORDS and a.dtype.kind in "US":
            return full
    return None


def find_layout(arrays: dict, skipped=(), source: str = "") -> tuple[str, dict]:
    """('split', roles) or ('views', roles) for the file's arrays, else LayoutError (contents + nearest layout)."""
    split_roles, split_missing = find_split_layout(arrays)
    view_roles, view_missing = find_view_layout(arrays)
    names = find_class_names(arrays)
    if not split_missing:
        return "split", {**split_roles, **({"class_names": names} if names else {})}
    if not view_missing:
        return "views", {**view_roles, **({"class_names": names} if names else {})}
    if len(split_roles) >= len(view_roles) - 1 and split_roles:
        near = (f"nearest known layout: one image, text and label array per split (found "
                f"{', '.join(f'{k}={v}' for k, v in split_roles.items())}; missing array(s) {', '.join(split_missing)}); "
                f"name them with --features-map image_train=...,text_train=...,label_train=...,image_test=...,"
                f"text_test=...,label_test=...")
    elif view_roles:
        near = (f"nearest known layout: two views + labels + train/test index arrays (found "
                f"{', '.join(f'{k}={v}' for k, v in view_roles.items())}; missing array(s) {', '.join(view_missing)}); "
                f"name them with --features-map image=...,text=...,labels=...,train=...,test=...")
    else:
        near = ("known layouts: image_train/text_train/label_train + the same for test (also I_tr/T_tr/L_tr, "
                "train_img/train_txt/train_lab, ...), or two views + labels + train/test index arrays (X1, X2, Y, "
                "ind_train, ind_test); name the arrays with --features-map image=...,text=...,labels=...,train=...,test=...")
    raise LayoutError(f"{source}: cannot tell which array is which; the file holds {describe(arrays, skipped)}; {near}")


def parse_map(spec, arrays: dict, source: str = "") -> tuple[str, dict]:
    """An explicit mapping ('image=X1,text=X2,...' or a dict) -> (layout, roles), every name checked."""
    if isinstance(spec, str):
        pairs = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, eq, value = part.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise DataError(f"features map: '{part}' should be ROLE=ARRAY (e.g. image=X1)")
            pairs[key.strip().lower()] = value.strip()
    elif isinstance(spec, dict):
        pairs = {str(k).lower(): str(v) for k, v in spec.items()}
    else:
        raise DataError(f"features map must be 'role=array,...' or a dict, got {type(spec).__name__}")
    pairs = {("labels" if k == "label" else k): v for k, v in pairs.items()}
    split_keys = {f"{k}_{s}" for k in KIND_WORDS for s in SPLIT_WORDS}
    allowed = set(ROLES) | split_keys
    unknown = sorted(set(pairs) - allowed)
    if unknown:
        raise DataError(f"features map: unknown role(s) {', '.join(unknown)}; use image, text, labels, train, test, val, "
                        f"class_names, or image_train, text_train, label_train, image_test, ...")
    roles = {}
    for key, name in pairs.items():
        if name in arrays:
            roles[key] = name
            continue
        leaf = [full for full in arrays if full.rpartition(".")[2] == name or full.endswith("." + name)]
        if len(leaf) != 1:
            why = "matches several arrays" if leaf else "is not in the file"
            raise DataError(f"{source}: features map {key}={name}: '{name}' {why}; the file holds {describe(arrays)}")
        roles[key] = leaf[0]
    if split_keys & set(roles):
        need = [f"{k}_{s}" for s in ("train", "test") for k in KIND_WORDS if f"{k}_{s}" not in roles]
        if need:
            raise DataError(f"{source}: features map names split arrays but not {', '.join(need)}")
        return "split", roles
    need = [r for r in ("image", "text", "labels", "train", "test") if r not in roles]
    if need:
        raise DataError(f"{source}: features map is missing {', '.join(need)} (a views layout needs image, text, labels, "
                        f"train and test)")
    return "views", roles
