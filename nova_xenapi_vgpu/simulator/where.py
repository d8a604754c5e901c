"""The expression language of ``get_all_records_where``.

Grammar, as xapi's database filter::

    expr  := expr "and" expr | expr "or" expr | "not" expr
           | "true" | "false" | "(" expr ")" | value "=" value
    value := STRING | "field" STRING
"""

import re

from nova_xenapi_vgpu.simulator.errors import XapiFailure

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(=)|"([^"]*)"|([A-Za-z]+))')


def _tokens(text):
    pos, result = 0, []
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError('unexpected %r' % text[pos:].strip()[:20])
        lparen, rparen, eq, string, word = match.groups()
        if string is not None:
            result.append(('str', string))
        else:
            result.append(('op', (lparen or rparen or eq or word).lower()))
        pos = match.end()
    return result


class _Parser:
    def __init__(self, text):
        self.tokens = _tokens(text)

    def parse(self):
        expr = self.disjunction()
        if self.tokens:
            raise ValueError('unexpected %r' % (self.tokens[0][1],))
        return expr

    def next(self, expected=None):
        if not self.tokens:
            raise ValueError('unexpected end of expression')
        kind, value = self.tokens.pop(0)
        if expected and (kind, value) != ('op', expected):
            raise ValueError('expected %r, got %r' % (expected, value))
        return kind, value

    def peek(self, op):
        return bool(self.tokens) and self.tokens[0] == ('op', op)

    def disjunction(self):
        return self.chain('or', self.conjunction)

    def conjunction(self):
        return self.chain('and', self.unary)

    def chain(self, word, operand):
        """Left-associative ``operand (word operand)*``."""
        left = operand()
        while self.peek(word):
            self.next()
            left = (word, left, operand())
        return left

    def unary(self):
        for word in ('not', 'true', 'false', '('):
            if self.peek(word):
                self.next()
                if word == 'not':
                    return ('not', self.unary())
                if word == '(':
                    expr = self.disjunction()
                    self.next(')')
                    return expr
                return (word,)
        left = self.value()
        self.next('=')
        return ('eq', left, self.value())

    def value(self):
        kind, value = self.next()
        if kind == 'str':
            return ('lit', value)
        if value == 'field':
            kind, name = self.next()
            if kind == 'str':
                return ('field', name.replace('__', '_'))
        raise ValueError('expected a string or field "name"')


def parse(text):
    """The expression tree of ``text``.

    :raises: XapiFailure INVALID_VALUE [text, reason].
    """
    try:
        return _Parser(text).parse()
    except ValueError as exc:
        raise XapiFailure('INVALID_VALUE', text, str(exc)) from None


def evaluate(expr, lookup):
    """Evaluate ``expr``; ``lookup(name)`` gives a field's wire string."""
    op = expr[0]
    if op in ('true', 'false'):
        return op == 'true'
    if op == 'not':
        return not evaluate(expr[1], lookup)
    if op == 'and':
        return evaluate(expr[1], lookup) and evaluate(expr[2], lookup)
    if op == 'or':
        return evaluate(expr[1], lookup) or evaluate(expr[2], lookup)
    values = [lookup(v[1]) if v[0] == 'field' else v[1] for v in expr[1:]]
    return values[0] == values[1]
