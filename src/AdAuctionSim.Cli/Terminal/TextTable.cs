using Spectre.Console;

namespace AdAuctionSim.Cli.Terminal;

/// <summary>
/// A small table: a Spectre table on a terminal, plain space-aligned columns otherwise (so logs and tests read it).
/// Numeric columns are right-aligned.
/// </summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];
    private readonly bool[] _right = new bool[headers.Length];

    public TextTable RightAlign(params int[] columns)
    {
        foreach (var c in columns)
        {
            _right[c] = true;
        }
        return this;
    }

    public TextTable Add(params string[] cells)
    {
        if (cells.Length != headers.Length)
        {
            throw new ArgumentException($"expected {headers.Length} cells, got {cells.Length}", nameof(cells));
        }
        _rows.Add(cells);
        return this;
    }

    public void Write(CliTerminal terminal, string indent = "  ")
    {
        if (terminal.Ansi is { } ansi)
        {
            var table = new Table().Border(TableBorder.Rounded);
            for (var c = 0; c < headers.Length; c++)
            {
                var column = new TableColumn(Markup.Escape(headers[c]));
                table.AddColumn(_right[c] ? column.RightAligned() : column);
            }
            foreach (var row in _rows)
            {
                table.AddRow(row.Select(Markup.Escape).ToArray());
            }
            ansi.Write(table);
            return;
        }
        var widths = new int[headers.Length];
        foreach (var row in _rows.Prepend(headers))
        {
            for (var c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }
        foreach (var row in _rows.Prepend(headers))
        {
            var cells = row.Select((cell, c) => _right[c] ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]));
            terminal.Out.WriteLine((indent + string.Join("  ", cells)).TrimEnd());
        }
    }
}

/// <summary>Labelled lines ("key  text"): a Spectre grid on a terminal (long text wraps in its column), aligned text otherwise.</summary>
internal static class KeyValueList
{
    public static void Write(CliTerminal terminal, IReadOnlyList<(string Key, string Text)> rows, string indent = "  ")
    {
        if (terminal.Ansi is { } ansi)
        {
            var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadLeft(indent.Length).PadRight(2)).AddColumn();
            foreach (var (key, text) in rows)
            {
                grid.AddRow(new Text(key, new Style(decoration: Decoration.Bold)), new Text(text));
            }
            ansi.Write(grid);
            return;
        }
        var width = rows.Max(r => r.Key.Length) + 2;
        foreach (var (key, text) in rows)
        {
            terminal.Out.WriteLine($"{indent}{key.PadRight(width)}{text}");
        }
    }
}
