"""Per-language tree-sitter settings: which grammar, which nodes are symbols.

Grammars come from the official prebuilt wheels (``tree-sitter-python`` ...),
imported lazily, so nothing is downloaded and ``anvil --help`` stays fast.

For each language:
- ``functions``: nodes that become one chunk each (functions, methods, and
  single-piece definitions such as structs or interfaces);
- ``containers``: nodes whose members become their own chunks (classes, impl
  blocks, namespaces); the container's own lines (signature, docstring,
  fields) form a header chunk;
- ``wrappers``: nodes around a definition (decorators, ``export``,
  ``template<>``) whose range belongs to the definition inside;
- ``transparent``: nodes whose children are walked as if they were at the
  same level (``#ifdef`` blocks, ``extern "C" { }``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    module: str  # the grammar wheel's module
    entry: str = "language"  # the function in that module returning the grammar
    functions: frozenset[str] = frozenset()
    containers: frozenset[str] = frozenset()
    wrappers: frozenset[str] = frozenset()
    transparent: frozenset[str] = frozenset()
    # Top-level variable declarations or assignments whose value is a function
    # or class (``const f = () => {}``, ``app.handle = function () {}``) count
    # as functions.
    declarations: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)


def _fs(*names: str) -> frozenset[str]:
    return frozenset(names)


_JS_FUNCTIONS = _fs(
    "function_declaration", "generator_function_declaration", "method_definition",
    "function_signature", "abstract_method_signature",
)
_JS_CONTAINERS = _fs("class_declaration", "class", "abstract_class_declaration")

SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(
        "python",
        "tree_sitter_python",
        functions=_fs("function_definition"),
        containers=_fs("class_definition"),
        wrappers=_fs("decorated_definition"),
    ),
    "javascript": LanguageSpec(
        "javascript",
        "tree_sitter_javascript",
        functions=_JS_FUNCTIONS,
        containers=_JS_CONTAINERS,
        wrappers=_fs("export_statement"),
        declarations=_fs("lexical_declaration", "variable_declaration", "expression_statement"),
    ),
    "typescript": LanguageSpec(
        "typescript",
        "tree_sitter_typescript",
        entry="language_typescript",
        functions=_JS_FUNCTIONS | _fs("interface_declaration", "type_alias_declaration", "enum_declaration"),
        containers=_JS_CONTAINERS | _fs("internal_module", "module"),
        wrappers=_fs("export_statement", "ambient_declaration"),
        declarations=_fs("lexical_declaration", "variable_declaration", "expression_statement"),
    ),
    "tsx": LanguageSpec(
        "tsx",
        "tree_sitter_typescript",
        entry="language_tsx",
        functions=_JS_FUNCTIONS | _fs("interface_declaration", "type_alias_declaration", "enum_declaration"),
        containers=_JS_CONTAINERS | _fs("internal_module", "module"),
        wrappers=_fs("export_statement", "ambient_declaration"),
        declarations=_fs("lexical_declaration", "variable_declaration", "expression_statement"),
    ),
    "go": LanguageSpec(
        "go",
        "tree_sitter_go",
        functions=_fs("function_declaration", "method_declaration", "type_declaration"),
    ),
    "rust": LanguageSpec(
        "rust",
        "tree_sitter_rust",
        functions=_fs(
            "function_item",
            "function_signature_item",
            "struct_item",
            "enum_item",
            "union_item",
            "type_item",
            "macro_definition",
            "const_item",
            "static_item",
        ),
        containers=_fs("impl_item", "trait_item", "mod_item"),
    ),
    "java": LanguageSpec(
        "java",
        "tree_sitter_java",
        functions=_fs("method_declaration", "constructor_declaration", "compact_constructor_declaration"),
        containers=_fs(
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "annotation_type_declaration",
        ),
    ),
    "c": LanguageSpec(
        "c",
        "tree_sitter_c",
        functions=_fs(
            "function_definition", "struct_specifier", "union_specifier", "enum_specifier", "type_definition"
        ),
        transparent=_fs(
            "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "linkage_specification", "declaration_list"
        ),
    ),
    "cpp": LanguageSpec(
        "cpp",
        "tree_sitter_cpp",
        functions=_fs(
            "function_definition", "enum_specifier", "union_specifier", "type_definition", "alias_declaration"
        ),
        containers=_fs("class_specifier", "struct_specifier", "namespace_definition"),
        wrappers=_fs("template_declaration"),
        transparent=_fs(
            "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "linkage_specification", "declaration_list"
        ),
    ),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp",
}

_PARSERS: dict[str, Any] = {}


def language_for(path: str) -> str | None:
    """The language name for a path, from its extension (None: plain text)."""
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    return EXTENSIONS.get(path[dot:].lower())


def parser_for(language: str) -> Any:
    """A cached tree-sitter Parser for a language name from SPECS."""
    parser = _PARSERS.get(language)
    if parser is None:
        import tree_sitter

        spec = SPECS[language]
        grammar = getattr(importlib.import_module(spec.module), spec.entry)()
        parser = tree_sitter.Parser(tree_sitter.Language(grammar))
        _PARSERS[language] = parser
    return parser
