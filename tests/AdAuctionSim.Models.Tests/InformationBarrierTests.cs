using System.Reflection;
using System.Reflection.Emit;
using AdAuctionSim.Models.Data;
using AdAuctionSim.Simulation.Output;

namespace AdAuctionSim.Models.Tests;

/// <summary>
/// The information barrier of DESIGN.md §4: the model suite sees a simulation only through <see cref="LoggedView"/>.
/// Checked three ways: what the Models assembly can reach (its references, the simulator types its code uses, the
/// strings it contains), what the view refuses, and what the training dataset was built from.
/// </summary>
[Collection(TorchSharpCollection.Name)]
public sealed class InformationBarrierTests
{
    private static readonly Assembly ModelsAssembly = typeof(LoggedDataset).Assembly;

    [Fact]
    public void The_models_assembly_references_only_the_simulation_torchsharp_parquet_and_the_base_library()
    {
        // Parquet.Net writes the predictions files; the evaluators' truth readers live in assemblies not listed here.
        var unexpected = ModelsAssembly.GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(name => name is not ("AdAuctionSim.Simulation" or "TorchSharp" or "Parquet" or "netstandard" or "mscorlib")
                && !name.StartsWith("System", StringComparison.Ordinal)
                && !name.StartsWith("Microsoft.Win32.", StringComparison.Ordinal))
            .ToList();

        Assert.True(unexpected.Count == 0, "unexpected references: " + string.Join(", ", unexpected));
    }

    [Fact]
    public void No_models_code_names_the_truth_product_or_a_truth_column_or_uses_the_simulator()
    {
        var problems = Scan(ModelsAssembly.GetTypes());

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void The_scan_finds_what_it_looks_for_in_code_that_does_it()
    {
        // The tests build worlds and delete truth files: exactly what models code must not do.
        var problems = Scan([typeof(TestSimulation), typeof(InformationBarrierTests)]);

        Assert.Contains(problems, p => p.Contains("uses AdAuctionSim.Simulation.World.WorldModel", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("uses AdAuctionSim.Simulation.Output.SimulationOutput", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("contains the string \"truth.parquet\"", StringComparison.Ordinal));
    }

    /// <summary>Strings naming the truth, and simulator types, that the given types' signatures and IL use.</summary>
    private static List<string> Scan(IEnumerable<Type> types)
    {
        var forbiddenLiterals = new HashSet<string>(LogColumns.TruthTail.Where(LogColumns.IsTruthOnly), StringComparer.OrdinalIgnoreCase)
        {
            LogColumns.TruthProduct,
        };
        var problems = new List<string>();
        foreach (var type in types)
        {
            foreach (var used in SignatureTypes(type))
            {
                CheckType(type, used, problems);
            }
            foreach (var method in Bodies(type))
            {
                foreach (var operand in Operands(method))
                {
                    switch (operand)
                    {
                        case string literal when forbiddenLiterals.Contains(literal)
                            || literal.StartsWith(LogColumns.TruthProduct + ".", StringComparison.OrdinalIgnoreCase):
                            problems.Add($"{type.FullName}.{method.Name} contains the string \"{literal}\"");
                            break;
                        case MemberInfo member:
                            CheckType(type, member as Type ?? member.DeclaringType, problems);
                            break;
                    }
                }
            }
        }
        return problems.Distinct().ToList();
    }

    [Fact]
    public void The_logged_view_refuses_every_truth_column_and_records_nothing()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        string[] truth = [.. LogColumns.TruthOnly, "q_click", "y_convert", LogColumns.TruePrefix, LogColumns.OutcomePrefix];
        foreach (var product in new[] { LoggedProduct.Impressions, LoggedProduct.LostBids, LoggedProduct.Ads })
        {
            foreach (var column in truth)
            {
                var e = Assert.Throws<ArgumentException>(() => view.Read(product, LogColumns.RequestId, column));
                Assert.Contains("truth", e.Message, StringComparison.Ordinal);
                Assert.Contains(column, e.Message, StringComparison.Ordinal);
            }
            Assert.Empty(view.ColumnsRead(product));
        }
    }

    [Fact]
    public void The_view_and_the_dataset_never_need_the_truth_file()
    {
        var folder = TestSimulation.CopyTo(TestSimulation.Parquet, "no-truth");
        File.Delete(Path.Combine(folder, "truth.parquet"));

        var view = LoggedView.Open(folder);
        using var data = LoggedDataset.Load(view);

        Assert.Equal(view.Manifest.RowCounts.Requests, data.Count);
    }

    [Fact]
    public void The_training_dataset_is_built_from_logged_columns_only()
    {
        var view = LoggedView.Open(TestSimulation.Parquet);
        using var data = LoggedDataset.Load(view);

        Assert.NotEmpty(data.ColumnsRead);
        foreach (var qualified in data.ColumnsRead)
        {
            var dot = qualified.IndexOf('.', StringComparison.Ordinal);
            var product = qualified[..dot];
            var column = qualified[(dot + 1)..];
            Assert.Contains(product, new[] { LogColumns.ImpressionsProduct, LogColumns.LostBidsProduct });
            Assert.False(LogColumns.IsTruthOnly(column), $"{qualified} is a truth column");
        }
        Assert.DoesNotContain(data.Schema.Fields, LogColumns.IsTruthOnly);
        // The view's own audit trail agrees: it was asked for logged columns only.
        Assert.DoesNotContain(view.ColumnsRead(LoggedProduct.Impressions), LogColumns.IsTruthOnly);
        Assert.DoesNotContain(view.ColumnsRead(LoggedProduct.LostBids), LogColumns.IsTruthOnly);
        Assert.Contains(LoggedDataset.WinPropensityColumn, view.ColumnsRead(LoggedProduct.Impressions));
    }

    /// <summary>The simulator's world, engine and output writer would let models re-simulate the truth.</summary>
    private static void CheckType(Type owner, Type? used, List<string> problems)
    {
        if (used is null)
        {
            return;
        }
        while (used.HasElementType)
        {
            used = used.GetElementType()!;
        }
        if (used.IsGenericType && !used.IsGenericTypeDefinition)
        {
            foreach (var argument in used.GetGenericArguments())
            {
                CheckType(owner, argument, problems);
            }
        }
        if (used.Assembly != typeof(LogColumns).Assembly)
        {
            return;
        }
        var ns = used.Namespace ?? "";
        if (ns.StartsWith("AdAuctionSim.Simulation.World", StringComparison.Ordinal)
            || ns.StartsWith("AdAuctionSim.Simulation.Engine", StringComparison.Ordinal)
            || used == typeof(SimulationOutput))
        {
            problems.Add($"{owner.FullName} uses {used.FullName}");
        }
    }

    private static IEnumerable<Type> SignatureTypes(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        if (type.BaseType is { } b)
        {
            yield return b;
        }
        foreach (var i in type.GetInterfaces())
        {
            yield return i;
        }
        foreach (var f in type.GetFields(all))
        {
            yield return f.FieldType;
        }
        foreach (var p in type.GetProperties(all))
        {
            yield return p.PropertyType;
        }
        foreach (var m in Bodies(type))
        {
            if (m is MethodInfo mi)
            {
                yield return mi.ReturnType;
            }
            foreach (var p in m.GetParameters())
            {
                yield return p.ParameterType;
            }
            foreach (var local in m.GetMethodBody()?.LocalVariables ?? [])
            {
                yield return local.LocalType;
            }
        }
    }

    private static IEnumerable<MethodBase> Bodies(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        return type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all));
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>Decodes a method's IL and yields the strings and members (types, fields, methods) its instructions name.</summary>
    private static IEnumerable<object> Operands(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            yield break;
        }
        var module = method.Module;
        var typeArgs = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var at = 0;
        while (at < il.Length)
        {
            short value = il[at] == 0xFE ? unchecked((short)(0xFE00 | il[at + 1])) : il[at];
            at += il[at] == 0xFE ? 2 : 1;
            var code = OpCodesByValue[value];
            var size = code.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
                _ => 4,
            };
            if (code.OperandType is OperandType.InlineString or OperandType.InlineField or OperandType.InlineMethod
                or OperandType.InlineType or OperandType.InlineTok)
            {
                var token = BitConverter.ToInt32(il, at);
                object? operand = null;
                try
                {
                    operand = code.OperandType == OperandType.InlineString
                        ? module.ResolveString(token)
                        : module.ResolveMember(token, typeArgs, methodArgs);
                }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException)
                {
                    // A member of an assembly this test cannot resolve: not one of the simulator's.
                }
                if (operand is not null)
                {
                    yield return operand;
                }
            }
            at += size;
        }
    }
}
