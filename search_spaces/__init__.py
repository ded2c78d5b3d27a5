"""The shipped search spaces: this folder is installed as `shufflesearch.search_spaces` (package data).

`shufflesearch spaces` lists them; `shufflesearch search demo` finds `demo.yaml` here from any folder.
"""
