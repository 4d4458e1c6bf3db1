"""Paid solver services' APIs, each in a subpackage of its own, so crawlers keep their solver client code;
what they share (reports of wrong answers) sits beside them."""
