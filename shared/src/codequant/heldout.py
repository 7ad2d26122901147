"""A small held-out code set for perplexity: short Python and Java snippets written for codequant (CC0).

None of them comes from HumanEval, MultiPL-E, McEval or any other benchmark or training set codequant uses, so
the tiny model never saw them. Perplexity on them measures how well a served variant still models code it did
not memorise. ``HELD_OUT_CODE`` maps a language to its snippets; ``held_out_texts`` lists them.
"""

from __future__ import annotations

NAME = "codequant-heldout-v1"

_PYTHON = [
    '''def running_mean(values):
    """Yield the mean of the values seen so far."""
    total = 0.0
    for count, value in enumerate(values, start=1):
        total += value
        yield total / count
''',
    '''def chunk(items, size):
    """Split a list into consecutive pieces of at most size items."""
    if size < 1:
        raise ValueError("size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]
''',
    '''def invert_mapping(mapping):
    """Map each value to the sorted list of keys that had it."""
    inverted = {}
    for key, value in mapping.items():
        inverted.setdefault(value, []).append(key)
    return {value: sorted(keys) for value, keys in inverted.items()}
''',
    '''def parse_duration(text):
    """Seconds in a duration such as '1h30m' or '45s'."""
    units = {"h": 3600, "m": 60, "s": 1}
    seconds, number = 0, ""
    for char in text.strip():
        if char.isdigit():
            number += char
        elif char in units and number:
            seconds += int(number) * units[char]
            number = ""
        else:
            raise ValueError(f"bad duration: {text!r}")
    return seconds
''',
    """class Stack:
    def __init__(self):
        self._items = []

    def push(self, item):
        self._items.append(item)

    def pop(self):
        if not self._items:
            raise IndexError("pop from an empty stack")
        return self._items.pop()

    def __len__(self):
        return len(self._items)
""",
    '''def word_lengths(sentence):
    """Count how many words of each length the sentence has."""
    counts = {}
    for word in sentence.split():
        word = word.strip(".,;:!?")
        if word:
            counts[len(word)] = counts.get(len(word), 0) + 1
    return dict(sorted(counts.items()))
''',
    '''def merge_intervals(intervals):
    """Merge overlapping closed intervals given as (start, end) pairs."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
''',
    '''import json
from pathlib import Path


def load_settings(path, defaults):
    """Settings from a JSON file laid over the defaults; a missing file gives the defaults."""
    file = Path(path)
    if not file.exists():
        return dict(defaults)
    with file.open(encoding="utf-8") as handle:
        return {**defaults, **json.load(handle)}
''',
    '''def rotate_grid(grid):
    """The grid turned a quarter turn clockwise."""
    return [list(row) for row in zip(*reversed(grid))]
''',
    '''def count_islands(grid):
    """Number of groups of '#' cells joined horizontally or vertically."""
    seen = set()
    islands = 0
    for r, row in enumerate(grid):
        for c, cell in enumerate(row):
            if cell != "#" or (r, c) in seen:
                continue
            islands += 1
            todo = [(r, c)]
            while todo:
                y, x = todo.pop()
                if (y, x) in seen or not (0 <= y < len(grid) and 0 <= x < len(grid[y])) or grid[y][x] != "#":
                    continue
                seen.add((y, x))
                todo += [(y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)]
    return islands
''',
    '''def caesar(text, shift):
    """Shift every ASCII letter by shift places, keeping its case."""
    out = []
    for char in text:
        if char.isascii() and char.isalpha():
            base = ord("a") if char.islower() else ord("A")
            out.append(chr(base + (ord(char) - base + shift) % 26))
        else:
            out.append(char)
    return "".join(out)
''',
    '''from collections import deque


def shortest_path(graph, start, goal):
    """Fewest edges from start to goal in an unweighted graph, or None."""
    queue = deque([(start, 0)])
    visited = {start}
    while queue:
        node, steps = queue.popleft()
        if node == goal:
            return steps
        for nxt in graph.get(node, ()):
            if nxt not in visited:
                visited.add(nxt)
                queue.append((nxt, steps + 1))
    return None
''',
    '''def to_snake_case(name):
    """'parseHttpHeader' -> 'parse_http_header'."""
    out = []
    for i, char in enumerate(name):
        if char.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)
''',
    '''def histogram(values, bins, low, high):
    """Counts of values in bins equal-width bins over [low, high); values outside are ignored."""
    counts = [0] * bins
    width = (high - low) / bins
    for value in values:
        if low <= value < high:
            counts[int((value - low) / width)] += 1
    return counts
''',
    """class LRUCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.data = {}

    def get(self, key, default=None):
        if key not in self.data:
            return default
        value = self.data.pop(key)
        self.data[key] = value
        return value

    def put(self, key, value):
        self.data.pop(key, None)
        self.data[key] = value
        if len(self.data) > self.capacity:
            del self.data[next(iter(self.data))]
""",
    '''def digits_sum_until_single(number):
    """Add the decimal digits again and again until one digit is left."""
    while number >= 10:
        number = sum(int(d) for d in str(number))
    return number
''',
]

_JAVA = [
    """import java.util.*;

class Inventory {
    private final Map<String, Integer> stock = new HashMap<>();

    void add(String item, int count) {
        stock.merge(item, count, Integer::sum);
    }

    boolean take(String item, int count) {
        int have = stock.getOrDefault(item, 0);
        if (have < count) {
            return false;
        }
        stock.put(item, have - count);
        return true;
    }
}
""",
    """class Temperature {
    static double toFahrenheit(double celsius) {
        return celsius * 9.0 / 5.0 + 32.0;
    }

    static double toCelsius(double fahrenheit) {
        return (fahrenheit - 32.0) * 5.0 / 9.0;
    }
}
""",
    """import java.util.*;

class WordCounter {
    static Map<String, Integer> count(String text) {
        Map<String, Integer> counts = new TreeMap<>();
        for (String word : text.toLowerCase().split("\\\\W+")) {
            if (!word.isEmpty()) {
                counts.merge(word, 1, Integer::sum);
            }
        }
        return counts;
    }
}
""",
    """class Matrix {
    static int[][] multiply(int[][] a, int[][] b) {
        int rows = a.length, cols = b[0].length, inner = b.length;
        int[][] result = new int[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                int sum = 0;
                for (int k = 0; k < inner; k++) {
                    sum += a[i][k] * b[k][j];
                }
                result[i][j] = sum;
            }
        }
        return result;
    }
}
""",
    """class BankAccount {
    private long cents;

    void deposit(long amount) {
        if (amount <= 0) {
            throw new IllegalArgumentException("deposit must be positive");
        }
        cents += amount;
    }

    void withdraw(long amount) {
        if (amount > cents) {
            throw new IllegalStateException("insufficient funds");
        }
        cents -= amount;
    }

    long balance() {
        return cents;
    }
}
""",
    """import java.util.*;

class Brackets {
    static boolean balanced(String text) {
        Deque<Character> open = new ArrayDeque<>();
        for (char c : text.toCharArray()) {
            if (c == '(' || c == '[' || c == '{') {
                open.push(c);
            } else if (c == ')' || c == ']' || c == '}') {
                if (open.isEmpty()) {
                    return false;
                }
                char last = open.pop();
                if ((c == ')' && last != '(') || (c == ']' && last != '[') || (c == '}' && last != '{')) {
                    return false;
                }
            }
        }
        return open.isEmpty();
    }
}
""",
    """class Gcd {
    static long gcd(long a, long b) {
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return Math.abs(a);
    }

    static long lcm(long a, long b) {
        return a / gcd(a, b) * b;
    }
}
""",
    """import java.util.*;

class Scores {
    static double median(List<Integer> values) {
        List<Integer> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        int n = sorted.size();
        if (n == 0) {
            throw new IllegalArgumentException("no values");
        }
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2.0;
    }
}
""",
    """class Point {
    final double x;
    final double y;

    Point(double x, double y) {
        this.x = x;
        this.y = y;
    }

    double distanceTo(Point other) {
        double dx = x - other.x;
        double dy = y - other.y;
        return Math.sqrt(dx * dx + dy * dy);
    }

    @Override
    public String toString() {
        return "(" + x + ", " + y + ")";
    }
}
""",
    """class RunLength {
    static String encode(String text) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < text.length()) {
            char c = text.charAt(i);
            int j = i;
            while (j < text.length() && text.charAt(j) == c) {
                j++;
            }
            out.append(j - i).append(c);
            i = j;
        }
        return out.toString();
    }
}
""",
    """import java.util.*;

class TopK {
    static List<Integer> largest(int[] values, int k) {
        PriorityQueue<Integer> heap = new PriorityQueue<>();
        for (int value : values) {
            heap.add(value);
            if (heap.size() > k) {
                heap.poll();
            }
        }
        List<Integer> result = new ArrayList<>(heap);
        result.sort(Collections.reverseOrder());
        return result;
    }
}
""",
    """class BinarySearch {
    static int indexOf(int[] sorted, int target) {
        int low = 0, high = sorted.length - 1;
        while (low <= high) {
            int mid = (low + high) >>> 1;
            if (sorted[mid] < target) {
                low = mid + 1;
            } else if (sorted[mid] > target) {
                high = mid - 1;
            } else {
                return mid;
            }
        }
        return -1;
    }
}
""",
    """import java.util.*;

class Schedule {
    record Meeting(int start, int end) {}

    static int roomsNeeded(List<Meeting> meetings) {
        int[] starts = meetings.stream().mapToInt(Meeting::start).sorted().toArray();
        int[] ends = meetings.stream().mapToInt(Meeting::end).sorted().toArray();
        int rooms = 0, best = 0, j = 0;
        for (int start : starts) {
            while (j < ends.length && ends[j] <= start) {
                j++;
                rooms--;
            }
            rooms++;
            best = Math.max(best, rooms);
        }
        return best;
    }
}
""",
    """class Roman {
    private static final int[] VALUES = {1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1};
    private static final String[] SYMBOLS = {"M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"};

    static String toRoman(int number) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < VALUES.length; i++) {
            while (number >= VALUES[i]) {
                number -= VALUES[i];
                out.append(SYMBOLS[i]);
            }
        }
        return out.toString();
    }
}
""",
]

#: language -> snippets
HELD_OUT_CODE: dict[str, list[str]] = {"python": _PYTHON, "java": _JAVA}


def held_out_texts(languages: tuple[str, ...] = ("python", "java")) -> list[str]:
    """The held-out snippets of ``languages``, in a fixed order."""
    unknown = [lang for lang in languages if lang not in HELD_OUT_CODE]
    if unknown:
        raise ValueError(f"no held-out code in {', '.join(unknown)}; known: {', '.join(HELD_OUT_CODE)}")
    return [text for lang in languages for text in HELD_OUT_CODE[lang]]
