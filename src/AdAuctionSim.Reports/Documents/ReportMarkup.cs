using System.Net;
using System.Text;
using AdAuctionSim.Reports.Plots;

namespace AdAuctionSim.Reports.Documents;

/// <summary>The HTML and Markdown pieces every report section writes the same way: escaping, tables and figures.</summary>
internal static class ReportMarkup
{
    /// <summary>HTML-escaped text.</summary>
    public static string E(string text) => WebUtility.HtmlEncode(text);

    /// <summary>Text safe inside a Markdown table cell or paragraph: pipes and stars escaped, one line.</summary>
    public static string Md(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("*", "\\*", StringComparison.Ordinal)
        .Replace("\n", " ", StringComparison.Ordinal);

    /// <summary>A plain HTML table (every cell escaped).</summary>
    public static void HtmlTable(StringBuilder h, IEnumerable<string> columns, IEnumerable<string[]> rows)
    {
        h.Append("<table>\n<tr>").AppendJoin("", columns.Select(c => $"<th>{E(c)}</th>")).Append("</tr>\n");
        foreach (var row in rows)
        {
            h.Append("<tr>").AppendJoin("", row.Select(c => $"<td>{E(c)}</td>")).Append("</tr>\n");
        }
        h.Append("</table>\n");
    }

    /// <summary>A Markdown table: the first <paramref name="textColumns"/> columns left-aligned, the rest right-aligned.</summary>
    public static void MarkdownTable(StringBuilder m, IReadOnlyList<string> columns, IEnumerable<string[]> rows, int textColumns)
    {
        m.Append("| ").Append(string.Join(" | ", columns)).Append(" |\n|")
            .Append(string.Concat(columns.Select((_, i) => i < textColumns ? " --- |" : " ---: |"))).Append('\n');
        foreach (var row in rows)
        {
            m.Append("| ").Append(string.Join(" | ", row.Select(Md))).Append(" |\n");
        }
    }

    /// <summary>A figure with its PNG embedded and its caption.</summary>
    public static void HtmlFigure(StringBuilder h, ReportFigure f) =>
        h.Append("<figure><img alt=\"").Append(E(f.Name)).Append("\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(f.Png))
            .Append("\"><figcaption>").Append(E(f.Caption)).Append("</figcaption></figure>\n");

    /// <summary>A figure linked from <paramref name="plotsFolder"/>, then its caption.</summary>
    public static void MarkdownFigure(StringBuilder m, ReportFigure f, string plotsFolder) =>
        m.Append("![").Append(f.Name).Append("](").Append(plotsFolder).Append('/').Append(f.Name).Append(".png)\n\n").Append(Md(f.Caption)).Append("\n\n");
}
