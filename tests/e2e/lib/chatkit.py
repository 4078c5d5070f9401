"""chatkit.py -- what the chat tests need to predict the server's upstream
traffic exactly: the classification flow's system prompt (read from its C
source, so the tests follow the flow) and the simulator's deterministic
answer to a message that no rule matches (docs/simulator.md).

    from chatkit import SYSTEM, sim_reply
"""
import codecs
import os
import re

from ingen import SRCDIR


def classification_system():
    """The flow's system prompt, read from its source (for exact token counts)."""
    with open(os.path.join(SRCDIR, "flows", "builtin", "classification_agent.c")) as f:
        src = f.read()
    body = src.split("classification_system[] =", 1)[1].split(";", 1)[0]
    return "".join(codecs.decode(s, "unicode_escape")
                   for s in re.findall(r'"((?:[^"\\]|\\.)*)"', body))


SYSTEM = classification_system()


def sim_reply(user):
    """The simulator's answer to a last user message without a rule (docs/simulator.md)."""
    h = 0xcbf29ce484222325
    for b in user.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return 'Simulated reply to: "%s" (ref %08x)' % (user.encode()[:80].decode(), h & 0xffffffff)
