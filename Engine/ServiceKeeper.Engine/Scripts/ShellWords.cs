// Splits a config attribute such as <custom arg="..."> into program arguments the way a POSIX shell
// would for simple quoting, so the same attribute means the same thing on Linux and Windows.
using System;
using System.Collections.Generic;
using System.Text;

namespace ServiceKeeper.Engine.Scripts
{
    public static class ShellWords
    {
        /// <summary>
        /// Words separated by white space; '...' keeps everything literally, "..." keeps spaces and
        /// understands \", a backslash outside quotes escapes a following space or quote. Any other
        /// backslash is literal, so Windows paths (C:\data, \\server\share) need no doubling. No
        /// variables, globs or command substitution. An unterminated quote runs to the end.
        /// </summary>
        public static IReadOnlyList<string> Split(string? text)
        {
            var words = new List<string>();
            if (string.IsNullOrEmpty(text))
                return words;

            var word = new StringBuilder();
            var inWord = false;
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                if (char.IsWhiteSpace(c))
                {
                    if (inWord)
                    {
                        words.Add(word.ToString());
                        word.Clear();
                        inWord = false;
                    }
                    continue;
                }

                inWord = true;
                switch (c)
                {
                    case '\'':
                        for (i++; i < text.Length && text[i] != '\''; i++)
                            word.Append(text[i]);
                        break;
                    case '"':
                        for (i++; i < text.Length && text[i] != '"'; i++)
                        {
                            if (text[i] == '\\' && i + 1 < text.Length && text[i + 1] == '"')
                                i++;
                            word.Append(text[i]);
                        }
                        break;
                    case '\\' when i + 1 < text.Length && (char.IsWhiteSpace(text[i + 1]) || text[i + 1] is '"' or '\''):
                        word.Append(text[++i]);
                        break;
                    default:
                        word.Append(c);
                        break;
                }
            }
            if (inWord)
                words.Add(word.ToString());
            return words;
        }
    }
}
