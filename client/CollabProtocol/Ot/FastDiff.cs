namespace Collab.Ot;

/// <summary>
/// npm <c>fast-diff</c> 1.3.0, as quill-delta 5.1.0 calls it (<c>diff(a, b, undefined, true)</c>):
/// diff-match-patch's diff without line mode or time limit, with semantic cleanup, never cutting
/// a surrogate pair. Ported step for step, so that <see cref="Delta.Diff(Delta)"/> gives exactly what
/// quill gives; strings compare by UTF-16 code unit (ordinal).
/// </summary>
internal static class FastDiff
{
    public const int Delete = -1;
    public const int Insert = 1;
    public const int Equal = 0;

    /// <summary>One piece of a diff; mutable while the cleanups rework the list.</summary>
    public sealed class Piece(int op, string text)
    {
        public int Op = op;
        public string Text = text;

        public void Deconstruct(out int op, out string text)
        {
            op = Op;
            text = Text;
        }
    }

    /// <summary>
    /// The work left for one diff, counted in characters compared by the searches (bisection and
    /// half-match); null for no limit. Once spent, each search left gives up as diff-match-patch
    /// does at its deadline: that part becomes one delete and one insert.
    /// </summary>
    public sealed class Budget(long steps)
    {
        public long Left = steps;

        public bool Spent => Left < 0;
    }

    public static List<Piece> Diff(string text1, string text2, Budget? budget = null) =>
        Main(text1, text2, budget, cleanup: true, fixUnicode: true);

    private static List<Piece> Main(string text1, string text2, Budget? budget, bool cleanup = false, bool fixUnicode = false)
    {
        if (text1 == text2)
        {
            return text1.Length > 0 ? [new(Equal, text1)] : [];
        }
        var commonLength = CommonPrefix(text1, text2);
        var commonPrefix = text1[..commonLength];
        text1 = text1[commonLength..];
        text2 = text2[commonLength..];

        commonLength = CommonSuffix(text1, text2);
        var commonSuffix = text1[(text1.Length - commonLength)..];
        text1 = text1[..(text1.Length - commonLength)];
        text2 = text2[..(text2.Length - commonLength)];

        var diffs = Compute(text1, text2, budget);
        if (commonPrefix.Length > 0)
        {
            diffs.Insert(0, new(Equal, commonPrefix));
        }
        if (commonSuffix.Length > 0)
        {
            diffs.Add(new(Equal, commonSuffix));
        }
        CleanupMerge(diffs, fixUnicode);
        if (cleanup)
        {
            CleanupSemantic(diffs);
        }
        return diffs;
    }

    private static List<Piece> Compute(string text1, string text2, Budget? budget)
    {
        if (text1.Length == 0)
        {
            return [new(Insert, text2)];
        }
        if (text2.Length == 0)
        {
            return [new(Delete, text1)];
        }
        var longText = text1.Length > text2.Length ? text1 : text2;
        var shortText = text1.Length > text2.Length ? text2 : text1;
        var i = longText.IndexOf(shortText, StringComparison.Ordinal);
        if (i != -1)
        {
            var outer = text1.Length > text2.Length ? Delete : Insert;
            return [new(outer, longText[..i]), new(Equal, shortText), new(outer, longText[(i + shortText.Length)..])];
        }
        if (shortText.Length == 1)
        {
            return [new(Delete, text1), new(Insert, text2)];
        }
        if (HalfMatch(text1, text2, budget) is { } hm)
        {
            var diffsA = Main(hm[0], hm[2], budget);
            var diffsB = Main(hm[1], hm[3], budget);
            diffsA.Add(new(Equal, hm[4]));
            diffsA.AddRange(diffsB);
            return diffsA;
        }
        return Bisect(text1, text2, budget);
    }

    private static List<Piece> Bisect(string text1, string text2, Budget? budget)
    {
        var text1Length = text1.Length;
        var text2Length = text2.Length;
        var maxD = (text1Length + text2Length + 1) / 2;
        var vOffset = maxD;
        var vLength = 2 * maxD;
        var v1 = new int[vLength];
        var v2 = new int[vLength];
        Array.Fill(v1, -1);
        Array.Fill(v2, -1);
        v1[vOffset + 1] = 0;
        v2[vOffset + 1] = 0;
        var delta = text1Length - text2Length;
        var front = delta % 2 != 0;
        var k1Start = 0;
        var k1End = 0;
        var k2Start = 0;
        var k2End = 0;
        for (var d = 0; d < maxD; d++)
        {
            if (budget is not null)
            {
                budget.Left -= 2 * d + 2;
                if (budget.Spent)
                {
                    break;
                }
            }
            for (var k1 = -d + k1Start; k1 <= d - k1End; k1 += 2)
            {
                var k1Offset = vOffset + k1;
                int x1;
                if (k1 == -d || (k1 != d && v1[k1Offset - 1] < v1[k1Offset + 1]))
                {
                    x1 = v1[k1Offset + 1];
                }
                else
                {
                    x1 = v1[k1Offset - 1] + 1;
                }
                var y1 = x1 - k1;
                var x1Start = x1;
                while (x1 < text1Length && y1 < text2Length && text1[x1] == text2[y1])
                {
                    x1++;
                    y1++;
                }
                if (budget is not null)
                {
                    budget.Left -= x1 - x1Start;
                }
                v1[k1Offset] = x1;
                if (x1 > text1Length)
                {
                    k1End += 2;
                }
                else if (y1 > text2Length)
                {
                    k1Start += 2;
                }
                else if (front)
                {
                    var k2Offset = vOffset + delta - k1;
                    if (k2Offset >= 0 && k2Offset < vLength && v2[k2Offset] != -1)
                    {
                        var x2 = text1Length - v2[k2Offset];
                        if (x1 >= x2)
                        {
                            return BisectSplit(text1, text2, x1, y1, budget);
                        }
                    }
                }
            }
            for (var k2 = -d + k2Start; k2 <= d - k2End; k2 += 2)
            {
                var k2Offset = vOffset + k2;
                int x2;
                if (k2 == -d || (k2 != d && v2[k2Offset - 1] < v2[k2Offset + 1]))
                {
                    x2 = v2[k2Offset + 1];
                }
                else
                {
                    x2 = v2[k2Offset - 1] + 1;
                }
                var y2 = x2 - k2;
                var x2Start = x2;
                while (x2 < text1Length && y2 < text2Length && text1[text1Length - x2 - 1] == text2[text2Length - y2 - 1])
                {
                    x2++;
                    y2++;
                }
                if (budget is not null)
                {
                    budget.Left -= x2 - x2Start;
                }
                v2[k2Offset] = x2;
                if (x2 > text1Length)
                {
                    k2End += 2;
                }
                else if (y2 > text2Length)
                {
                    k2Start += 2;
                }
                else if (!front)
                {
                    var k1Offset = vOffset + delta - k2;
                    if (k1Offset >= 0 && k1Offset < vLength && v1[k1Offset] != -1)
                    {
                        var x1 = v1[k1Offset];
                        var y1 = vOffset + x1 - k1Offset;
                        x2 = text1Length - x2;
                        if (x1 >= x2)
                        {
                            return BisectSplit(text1, text2, x1, y1, budget);
                        }
                    }
                }
            }
        }
        return [new(Delete, text1), new(Insert, text2)];
    }

    private static List<Piece> BisectSplit(string text1, string text2, int x, int y, Budget? budget)
    {
        var diffs = Main(text1[..x], text2[..y], budget);
        diffs.AddRange(Main(text1[x..], text2[y..], budget));
        return diffs;
    }

    private static int CommonPrefix(string text1, string text2)
    {
        if (text1.Length == 0 || text2.Length == 0 || text1[0] != text2[0])
        {
            return 0;
        }
        var n = text1.AsSpan().CommonPrefixLength(text2);
        if (char.IsHighSurrogate(text1[n - 1]))
        {
            n--;
        }
        return n;
    }

    private static int CommonSuffix(string text1, string text2)
    {
        if (text1.Length == 0 || text2.Length == 0 || text1[^1] != text2[^1])
        {
            return 0;
        }
        var max = Math.Min(text1.Length, text2.Length);
        var n = 0;
        while (n < max && text1[text1.Length - 1 - n] == text2[text2.Length - 1 - n])
        {
            n++;
        }
        if (char.IsLowSurrogate(text1[text1.Length - n]))
        {
            n--;
        }
        return n;
    }

    private static int CommonOverlap(string text1, string text2)
    {
        var text1Length = text1.Length;
        var text2Length = text2.Length;
        if (text1Length == 0 || text2Length == 0)
        {
            return 0;
        }
        if (text1Length > text2Length)
        {
            text1 = text1[(text1Length - text2Length)..];
        }
        else if (text1Length < text2Length)
        {
            text2 = text2[..text1Length];
        }
        var textLength = Math.Min(text1Length, text2Length);
        if (text1 == text2)
        {
            return textLength;
        }
        var best = 0;
        var length = 1;
        while (true)
        {
            var pattern = text1[(textLength - length)..];
            var found = text2.IndexOf(pattern, StringComparison.Ordinal);
            if (found == -1)
            {
                return best;
            }
            length += found;
            if (found == 0 || text1[(textLength - length)..] == text2[..length])
            {
                best = length;
                length++;
            }
        }
    }

    private static string[]? HalfMatch(string text1, string text2, Budget? budget)
    {
        var longText = text1.Length > text2.Length ? text1 : text2;
        var shortText = text1.Length > text2.Length ? text2 : text1;
        if (longText.Length < 4 || shortText.Length * 2 < longText.Length)
        {
            return null;
        }
        var hm1 = HalfMatchAt(longText, shortText, (longText.Length + 3) / 4, budget);
        var hm2 = HalfMatchAt(longText, shortText, (longText.Length + 1) / 2, budget);
        if (budget is { Spent: true })
        {
            return null;
        }
        string[] hm;
        if (hm1 is null && hm2 is null)
        {
            return null;
        }
        else if (hm2 is null)
        {
            hm = hm1!;
        }
        else if (hm1 is null)
        {
            hm = hm2;
        }
        else
        {
            hm = hm1[4].Length > hm2[4].Length ? hm1 : hm2;
        }
        return text1.Length > text2.Length ? hm : [hm[2], hm[3], hm[0], hm[1], hm[4]];
    }

    private static string[]? HalfMatchAt(string longText, string shortText, int i, Budget? budget)
    {
        var seed = longText.Substring(i, Math.Min(longText.Length / 4, longText.Length - i));
        var j = -1;
        var bestCommon = "";
        string bestLongA = "", bestLongB = "", bestShortA = "", bestShortB = "";
        while (j + 1 <= shortText.Length && (j = shortText.IndexOf(seed, j + 1, StringComparison.Ordinal)) != -1)
        {
            var prefixLength = CommonPrefix(longText[i..], shortText[j..]);
            var suffixLength = CommonSuffix(longText[..i], shortText[..j]);
            if (budget is not null)
            {
                budget.Left -= seed.Length + prefixLength + suffixLength;
            }
            if (bestCommon.Length < suffixLength + prefixLength)
            {
                bestCommon = shortText.Substring(j - suffixLength, suffixLength) + shortText.Substring(j, prefixLength);
                bestLongA = longText[..(i - suffixLength)];
                bestLongB = longText[(i + prefixLength)..];
                bestShortA = shortText[..(j - suffixLength)];
                bestShortB = shortText[(j + prefixLength)..];
            }
        }
        return bestCommon.Length * 2 >= longText.Length ? [bestLongA, bestLongB, bestShortA, bestShortB, bestCommon] : null;
    }

    private static void CleanupSemantic(List<Piece> diffs)
    {
        var changes = false;
        // A JavaScript array indexed by a counter that can go below zero: the counter, not the
        // array, says where the last equality is, and which slot a new one overwrites.
        var equalities = new Dictionary<int, int>();
        var equalitiesLength = 0;
        string? lastEquality = null;
        var pointer = 0;
        var lengthInsertions1 = 0;
        var lengthDeletions1 = 0;
        var lengthInsertions2 = 0;
        var lengthDeletions2 = 0;
        while (pointer < diffs.Count)
        {
            if (diffs[pointer].Op == Equal)
            {
                equalities[equalitiesLength++] = pointer;
                lengthInsertions1 = lengthInsertions2;
                lengthDeletions1 = lengthDeletions2;
                lengthInsertions2 = 0;
                lengthDeletions2 = 0;
                lastEquality = diffs[pointer].Text;
            }
            else
            {
                if (diffs[pointer].Op == Insert)
                {
                    lengthInsertions2 += diffs[pointer].Text.Length;
                }
                else
                {
                    lengthDeletions2 += diffs[pointer].Text.Length;
                }
                if (!string.IsNullOrEmpty(lastEquality)
                    && lastEquality.Length <= Math.Max(lengthInsertions1, lengthDeletions1)
                    && lastEquality.Length <= Math.Max(lengthInsertions2, lengthDeletions2))
                {
                    var at = equalities[equalitiesLength - 1];
                    diffs.Insert(at, new(Delete, lastEquality));
                    diffs[at + 1].Op = Insert;
                    equalitiesLength -= 2;
                    pointer = equalitiesLength > 0 ? equalities[equalitiesLength - 1] : -1;
                    lengthInsertions1 = 0;
                    lengthDeletions1 = 0;
                    lengthInsertions2 = 0;
                    lengthDeletions2 = 0;
                    lastEquality = null;
                    changes = true;
                }
            }
            pointer++;
        }
        if (changes)
        {
            CleanupMerge(diffs, fixUnicode: false);
        }
        CleanupSemanticLossless(diffs);

        pointer = 1;
        while (pointer < diffs.Count)
        {
            if (diffs[pointer - 1].Op == Delete && diffs[pointer].Op == Insert)
            {
                var deletion = diffs[pointer - 1].Text;
                var insertion = diffs[pointer].Text;
                var overlap1 = CommonOverlap(deletion, insertion);
                var overlap2 = CommonOverlap(insertion, deletion);
                if (overlap1 >= overlap2)
                {
                    if (overlap1 * 2 >= deletion.Length || overlap1 * 2 >= insertion.Length)
                    {
                        diffs.Insert(pointer, new(Equal, insertion[..overlap1]));
                        diffs[pointer - 1].Text = deletion[..(deletion.Length - overlap1)];
                        diffs[pointer + 1].Text = insertion[overlap1..];
                        pointer++;
                    }
                }
                else if (overlap2 * 2 >= deletion.Length || overlap2 * 2 >= insertion.Length)
                {
                    diffs.Insert(pointer, new(Equal, deletion[..overlap2]));
                    diffs[pointer - 1].Op = Insert;
                    diffs[pointer - 1].Text = insertion[..(insertion.Length - overlap2)];
                    diffs[pointer + 1].Op = Delete;
                    diffs[pointer + 1].Text = deletion[overlap2..];
                    pointer++;
                }
                pointer++;
            }
            pointer++;
        }
    }

    // JavaScript's /[^a-zA-Z0-9]/ and /\s/, which differ from .NET's char classes.
    private static bool IsNonAlphaNumeric(char c) => c is not ((>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9'));

    private static bool IsJsWhitespace(char c) =>
        c is '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or '\u00a0' or '\u1680' or (>= '\u2000' and <= '\u200a')
            or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' or '\ufeff';

    private static int SemanticScore(string one, string two)
    {
        if (one.Length == 0 || two.Length == 0)
        {
            return 6;
        }
        var char1 = one[^1];
        var char2 = two[0];
        var nonAlphaNumeric1 = IsNonAlphaNumeric(char1);
        var nonAlphaNumeric2 = IsNonAlphaNumeric(char2);
        var whitespace1 = nonAlphaNumeric1 && IsJsWhitespace(char1);
        var whitespace2 = nonAlphaNumeric2 && IsJsWhitespace(char2);
        var lineBreak1 = whitespace1 && char1 is '\r' or '\n';
        var lineBreak2 = whitespace2 && char2 is '\r' or '\n';
        var blankLine1 = lineBreak1 && (one.EndsWith("\n\n", StringComparison.Ordinal) || one.EndsWith("\n\r\n", StringComparison.Ordinal));
        var blankLine2 = lineBreak2 && (two.StartsWith("\n\n", StringComparison.Ordinal) || two.StartsWith("\n\r\n", StringComparison.Ordinal)
            || two.StartsWith("\r\n\n", StringComparison.Ordinal) || two.StartsWith("\r\n\r\n", StringComparison.Ordinal));
        if (blankLine1 || blankLine2)
        {
            return 5;
        }
        if (lineBreak1 || lineBreak2)
        {
            return 4;
        }
        if (nonAlphaNumeric1 && !whitespace1 && whitespace2)
        {
            return 3;
        }
        if (whitespace1 || whitespace2)
        {
            return 2;
        }
        return nonAlphaNumeric1 || nonAlphaNumeric2 ? 1 : 0;
    }

    private static void CleanupSemanticLossless(List<Piece> diffs)
    {
        var pointer = 1;
        while (pointer < diffs.Count - 1)
        {
            if (diffs[pointer - 1].Op == Equal && diffs[pointer + 1].Op == Equal)
            {
                var equality1 = diffs[pointer - 1].Text;
                var edit = diffs[pointer].Text;
                var equality2 = diffs[pointer + 1].Text;

                var commonOffset = CommonSuffix(equality1, edit);
                if (commonOffset > 0)
                {
                    var commonString = edit[(edit.Length - commonOffset)..];
                    equality1 = equality1[..(equality1.Length - commonOffset)];
                    edit = commonString + edit[..(edit.Length - commonOffset)];
                    equality2 = commonString + equality2;
                }

                var bestEquality1 = equality1;
                var bestEdit = edit;
                var bestEquality2 = equality2;
                var bestScore = SemanticScore(equality1, edit) + SemanticScore(edit, equality2);
                // The edit is never empty, so an empty equality2 ends the loop.
                while (equality2.Length > 0 && edit[0] == equality2[0])
                {
                    equality1 += edit[0];
                    edit = edit[1..] + equality2[0];
                    equality2 = equality2[1..];
                    var score = SemanticScore(equality1, edit) + SemanticScore(edit, equality2);
                    if (score >= bestScore)
                    {
                        bestScore = score;
                        bestEquality1 = equality1;
                        bestEdit = edit;
                        bestEquality2 = equality2;
                    }
                }

                if (diffs[pointer - 1].Text != bestEquality1)
                {
                    if (bestEquality1.Length > 0)
                    {
                        diffs[pointer - 1].Text = bestEquality1;
                    }
                    else
                    {
                        diffs.RemoveAt(pointer - 1);
                        pointer--;
                    }
                    diffs[pointer].Text = bestEdit;
                    if (bestEquality2.Length > 0)
                    {
                        diffs[pointer + 1].Text = bestEquality2;
                    }
                    else
                    {
                        diffs.RemoveAt(pointer + 1);
                        pointer--;
                    }
                }
            }
            pointer++;
        }
    }

    private static void CleanupMerge(List<Piece> diffs, bool fixUnicode)
    {
        diffs.Add(new(Equal, ""));
        var pointer = 0;
        var countDelete = 0;
        var countInsert = 0;
        var textDelete = "";
        var textInsert = "";
        while (pointer < diffs.Count)
        {
            if (pointer < diffs.Count - 1 && diffs[pointer].Text.Length == 0)
            {
                diffs.RemoveAt(pointer);
                continue;
            }
            switch (diffs[pointer].Op)
            {
                case Insert:
                    countInsert++;
                    textInsert += diffs[pointer].Text;
                    pointer++;
                    break;
                case Delete:
                    countDelete++;
                    textDelete += diffs[pointer].Text;
                    pointer++;
                    break;
                default:
                    var previousEquality = pointer - countInsert - countDelete - 1;
                    if (fixUnicode)
                    {
                        if (previousEquality >= 0 && EndsWithPairStart(diffs[previousEquality].Text))
                        {
                            var stray = diffs[previousEquality].Text[^1..];
                            diffs[previousEquality].Text = diffs[previousEquality].Text[..^1];
                            textDelete = stray + textDelete;
                            textInsert = stray + textInsert;
                            if (diffs[previousEquality].Text.Length == 0)
                            {
                                diffs.RemoveAt(previousEquality);
                                pointer--;
                                var k = previousEquality - 1;
                                if (k >= 0 && diffs[k].Op == Insert)
                                {
                                    countInsert++;
                                    textInsert = diffs[k].Text + textInsert;
                                    k--;
                                }
                                if (k >= 0 && diffs[k].Op == Delete)
                                {
                                    countDelete++;
                                    textDelete = diffs[k].Text + textDelete;
                                    k--;
                                }
                                previousEquality = k;
                            }
                        }
                        if (StartsWithPairEnd(diffs[pointer].Text))
                        {
                            var stray = diffs[pointer].Text[..1];
                            diffs[pointer].Text = diffs[pointer].Text[1..];
                            textDelete += stray;
                            textInsert += stray;
                        }
                    }
                    if (pointer < diffs.Count - 1 && diffs[pointer].Text.Length == 0)
                    {
                        diffs.RemoveAt(pointer);
                        break;
                    }
                    if (textDelete.Length > 0 || textInsert.Length > 0)
                    {
                        if (textDelete.Length > 0 && textInsert.Length > 0)
                        {
                            var commonLength = CommonPrefix(textInsert, textDelete);
                            if (commonLength != 0)
                            {
                                if (previousEquality >= 0)
                                {
                                    diffs[previousEquality].Text += textInsert[..commonLength];
                                }
                                else
                                {
                                    diffs.Insert(0, new(Equal, textInsert[..commonLength]));
                                    pointer++;
                                }
                                textInsert = textInsert[commonLength..];
                                textDelete = textDelete[commonLength..];
                            }
                            commonLength = CommonSuffix(textInsert, textDelete);
                            if (commonLength != 0)
                            {
                                diffs[pointer].Text = textInsert[(textInsert.Length - commonLength)..] + diffs[pointer].Text;
                                textInsert = textInsert[..(textInsert.Length - commonLength)];
                                textDelete = textDelete[..(textDelete.Length - commonLength)];
                            }
                        }
                        var n = countInsert + countDelete;
                        if (textDelete.Length == 0 && textInsert.Length == 0)
                        {
                            diffs.RemoveRange(pointer - n, n);
                            pointer -= n;
                        }
                        else if (textDelete.Length == 0)
                        {
                            diffs.RemoveRange(pointer - n, n);
                            diffs.Insert(pointer - n, new(Insert, textInsert));
                            pointer = pointer - n + 1;
                        }
                        else if (textInsert.Length == 0)
                        {
                            diffs.RemoveRange(pointer - n, n);
                            diffs.Insert(pointer - n, new(Delete, textDelete));
                            pointer = pointer - n + 1;
                        }
                        else
                        {
                            diffs.RemoveRange(pointer - n, n);
                            diffs.InsertRange(pointer - n, [new(Delete, textDelete), new(Insert, textInsert)]);
                            pointer = pointer - n + 2;
                        }
                    }
                    if (pointer != 0 && diffs[pointer - 1].Op == Equal)
                    {
                        diffs[pointer - 1].Text += diffs[pointer].Text;
                        diffs.RemoveAt(pointer);
                    }
                    else
                    {
                        pointer++;
                    }
                    countInsert = 0;
                    countDelete = 0;
                    textDelete = "";
                    textInsert = "";
                    break;
            }
        }
        if (diffs[^1].Text.Length == 0)
        {
            diffs.RemoveAt(diffs.Count - 1);
        }

        var changes = false;
        pointer = 1;
        while (pointer < diffs.Count - 1)
        {
            if (diffs[pointer - 1].Op == Equal && diffs[pointer + 1].Op == Equal)
            {
                var previous = diffs[pointer - 1].Text;
                var current = diffs[pointer].Text;
                var next = diffs[pointer + 1].Text;
                if (current.EndsWith(previous, StringComparison.Ordinal))
                {
                    diffs[pointer].Text = previous + current[..(current.Length - previous.Length)];
                    diffs[pointer + 1].Text = previous + next;
                    diffs.RemoveAt(pointer - 1);
                    changes = true;
                }
                else if (current.StartsWith(next, StringComparison.Ordinal))
                {
                    diffs[pointer - 1].Text += next;
                    diffs[pointer].Text = current[next.Length..] + next;
                    diffs.RemoveAt(pointer + 1);
                    changes = true;
                }
            }
            pointer++;
        }
        if (changes)
        {
            CleanupMerge(diffs, fixUnicode);
        }
    }

    private static bool StartsWithPairEnd(string s) => s.Length > 0 && char.IsLowSurrogate(s[0]);

    private static bool EndsWithPairStart(string s) => s.Length > 0 && char.IsHighSurrogate(s[^1]);
}
