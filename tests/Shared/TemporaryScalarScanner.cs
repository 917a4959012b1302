using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace AdAuctionSim.Tests.Shared;

/// <summary>
/// Finds, in compiled assemblies, the places that hand libtorch a TorchSharp <c>Scalar</c> nothing keeps alive.
/// </summary>
/// <remarks>
/// <para>
/// TorchSharp 0.107 frees a Scalar's native value in its finalizer and does not keep the managed object alive across the
/// native call it was made for. A Scalar made for one call (an implicit conversion such as <c>x * 0.5</c> or
/// <c>clamp_min(1e-6)</c>, or one TorchSharp makes inside a method such as <c>Tensor + Tensor</c>, which passes
/// <c>alpha = 1</c>) is unreachable once its handle has been read, so a garbage collection triggered by another thread
/// while libtorch runs can free it under libtorch's feet. Seen in CI as "For integral input tensors, argument alpha must
/// not be a floating point number" and as "Expected false to be true" from <c>c10::Scalar::toFloat</c>.
/// </para>
/// <para>
/// The scanner reads IL with System.Reflection.Metadata. A conversion to Scalar (<c>op_Implicit</c>, <c>ToScalar</c>) is
/// safe when its result goes straight into a field (a held Scalar) or into a local the method disposes (a <c>using</c>
/// declaration, which keeps it alive to the end of its scope). A TorchSharp method is unsafe when it makes an unsafe
/// Scalar itself or calls an unsafe TorchSharp method; any call to one is reported.
/// </para>
/// </remarks>
internal static class TemporaryScalarScanner
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(op => op.Value);

    /// <summary>
    /// The TorchSharp methods that make a Scalar nothing keeps alive, directly or through other TorchSharp methods, and
    /// the types with such a virtual method (an optimizer's <c>step</c>, a module's <c>forward</c>): a call through the
    /// base class cannot be followed, so making one of these is what gets reported.
    /// </summary>
    public static UnsafeTorchSharp UnsafeTorchSharpMembers(string torchSharpPath)
    {
        var methods = ReadMethods(torchSharpPath);
        var unsafeMethods = methods.Where(m => !IsConversion(m.Name) && m.Calls.Any(c => IsUnheldConversion(c, m))).Select(m => m.Name).ToHashSet();
        var grew = true;
        while (grew)
        {
            grew = false;
            foreach (var m in methods)
            {
                if (!unsafeMethods.Contains(m.Name) && !IsConversion(m.Name) && m.Calls.Any(c => unsafeMethods.Contains(c.Callee)))
                {
                    unsafeMethods.Add(m.Name);
                    grew = true;
                }
            }
        }
        var unsafeTypes = methods.Where(m => m.IsVirtual && unsafeMethods.Contains(m.Name)).Select(m => m.Type).ToHashSet();
        return new UnsafeTorchSharp(unsafeMethods, unsafeTypes);
    }

    /// <summary>What <see cref="UnsafeTorchSharpMembers"/> found.</summary>
    public sealed record UnsafeTorchSharp(IReadOnlySet<string> Methods, IReadOnlySet<string> Types);

    /// <summary>Every place in <paramref name="assemblyPath"/> that passes libtorch an unheld Scalar, as "caller -> callee".</summary>
    public static IReadOnlyList<string> Findings(string assemblyPath, UnsafeTorchSharp unsafeTorchSharp)
    {
        var findings = new List<string>();
        foreach (var m in ReadMethods(assemblyPath))
        {
            foreach (var call in m.Calls)
            {
                if (IsUnheldConversion(call, m) || unsafeTorchSharp.Methods.Contains(call.Callee)
                    || unsafeTorchSharp.Types.Contains(call.Returns)
                    || (unsafeTorchSharp.Types.Contains(call.CalleeType) && call.Callee.Contains("::.ctor(", StringComparison.Ordinal)))
                {
                    findings.Add($"{m.Name} -> {call.Callee}");
                }
            }
        }
        return findings;
    }

    private static bool IsConversion(string method) =>
        method.StartsWith("TorchSharp.Scalar::op_Implicit(", StringComparison.Ordinal)
        || (method.StartsWith("TorchSharp.ScalarExtensionMethods::To", StringComparison.Ordinal) && method.Contains("Scalar(", StringComparison.Ordinal));

    private static bool IsUnheldConversion(Call call, MethodIl caller)
    {
        if (!IsConversion(call.Callee))
        {
            return false;
        }
        var next = call.Next;
        if (next == OpCodes.Stsfld || next == OpCodes.Stfld)
        {
            return false;
        }
        return !(call.StoredLocal is { } local && caller.DisposedLocals.Contains(local));
    }

    private sealed record Call(string Callee, string CalleeType, string Returns, OpCode Next, int? StoredLocal);

    private sealed record MethodIl(string Name, string Type, bool IsVirtual, IReadOnlyList<Call> Calls, IReadOnlySet<int> DisposedLocals);

    private static List<MethodIl> ReadMethods(string path)
    {
        using var stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var result = new List<MethodIl>();
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(typeHandle);
            foreach (var methodHandle in type.GetMethods())
            {
                var method = md.GetMethodDefinition(methodHandle);
                if (method.RelativeVirtualAddress == 0)
                {
                    continue;
                }
                var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes();
                if (il is null)
                {
                    continue;
                }
                var virtualMethod = (method.Attributes & System.Reflection.MethodAttributes.Virtual) != 0;
                result.Add(ReadIl(md, MethodName(md, methodHandle), TypeNames.Definition(md, typeHandle), virtualMethod, il));
            }
        }
        return result;
    }

    private static MethodIl ReadIl(MetadataReader md, string name, string type, bool isVirtual, byte[] il)
    {
        var instructions = new List<(OpCode Op, int OperandAt)>();
        var at = 0;
        while (at < il.Length)
        {
            short value = il[at++];
            if (value == 0xFE)
            {
                value = (short)(0xFE00 | il[at++]);
            }
            var op = OpCodesByValue[value];
            instructions.Add((op, at));
            at += OperandSize(op, il, at);
        }

        var calls = new List<Call>();
        var disposed = new HashSet<int>();
        for (var i = 0; i < instructions.Count; i++)
        {
            var (op, operandAt) = instructions[i];
            if (op.OperandType != OperandType.InlineMethod)
            {
                continue;
            }
            var handle = MetadataTokens.EntityHandle(BitConverter.ToInt32(il, operandAt));
            var callee = MethodName(md, handle);
            var next = i + 1 < instructions.Count ? instructions[i + 1] : (Op: OpCodes.Nop, OperandAt: 0);
            calls.Add(new Call(callee, callee[..callee.IndexOf("::", StringComparison.Ordinal)], Signature(md, handle).ReturnType, next.Op,
                Local(Stores, next.Op, il, next.OperandAt)));
            if (callee.EndsWith("::Dispose()", StringComparison.Ordinal) && i > 0 && Local(Loads, instructions[i - 1].Op, il, instructions[i - 1].OperandAt) is { } local)
            {
                disposed.Add(local);
            }
        }
        return new MethodIl(name, type, isVirtual, calls, disposed);
    }

    private static int OperandSize(OpCode op, byte[] il, int at) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
        _ => 4,
    };

    private static readonly OpCode[] Stores = [OpCodes.Stloc_0, OpCodes.Stloc_1, OpCodes.Stloc_2, OpCodes.Stloc_3, OpCodes.Stloc_S, OpCodes.Stloc];
    private static readonly OpCode[] Loads = [OpCodes.Ldloc_0, OpCodes.Ldloc_1, OpCodes.Ldloc_2, OpCodes.Ldloc_3, OpCodes.Ldloc_S, OpCodes.Ldloc];

    /// <summary>The local an instruction of <paramref name="forms"/> (slots 0–3, short, long) stores or loads, else null.</summary>
    private static int? Local(OpCode[] forms, OpCode op, byte[] il, int operandAt)
    {
        var form = Array.IndexOf(forms, op);
        return form switch
        {
            < 0 => null,
            < 4 => form,
            4 => il[operandAt],
            _ => BitConverter.ToUInt16(il, operandAt),
        };
    }

    private static string MethodName(MetadataReader md, EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.MethodDefinition:
                {
                    var method = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                    return $"{TypeName(md, method.GetDeclaringType())}::{md.GetString(method.Name)}{Parameters(md, method.Signature)}";
                }
            case HandleKind.MemberReference:
                {
                    var member = md.GetMemberReference((MemberReferenceHandle)handle);
                    return $"{TypeName(md, member.Parent)}::{md.GetString(member.Name)}{Parameters(md, member.Signature)}";
                }
            case HandleKind.MethodSpecification:
                return MethodName(md, md.GetMethodSpecification((MethodSpecificationHandle)handle).Method);
            default:
                return "?";
        }
    }

    private static string Parameters(MetadataReader md, BlobHandle signature) => $"({string.Join(",", Decode(md, signature).ParameterTypes)})";

    private static MethodSignature<string> Decode(MetadataReader md, BlobHandle signature)
    {
        var reader = md.GetBlobReader(signature);
        return new SignatureDecoder<string, object?>(TypeNames.Instance, md, null).DecodeMethodSignature(ref reader);
    }

    private static MethodSignature<string> Signature(MetadataReader md, EntityHandle handle) => handle.Kind switch
    {
        HandleKind.MethodDefinition => Decode(md, md.GetMethodDefinition((MethodDefinitionHandle)handle).Signature),
        HandleKind.MemberReference => Decode(md, md.GetMemberReference((MemberReferenceHandle)handle).Signature),
        HandleKind.MethodSpecification => Signature(md, md.GetMethodSpecification((MethodSpecificationHandle)handle).Method),
        _ => throw new BadImageFormatException($"unexpected method token kind {handle.Kind}"),
    };

    private static string TypeName(MetadataReader md, EntityHandle handle) => handle.Kind switch
    {
        HandleKind.TypeDefinition => TypeNames.Definition(md, (TypeDefinitionHandle)handle),
        HandleKind.TypeReference => TypeNames.Reference(md, (TypeReferenceHandle)handle),
        HandleKind.TypeSpecification => "(generic instance)",
        _ => "?",
    };

    /// <summary>Type names as "Namespace.Outer/Inner", the same whether a type is defined here or referenced.</summary>
    private sealed class TypeNames : ISignatureTypeProvider<string, object?>
    {
        public static readonly TypeNames Instance = new();

        public static string Definition(MetadataReader md, TypeDefinitionHandle handle)
        {
            var type = md.GetTypeDefinition(handle);
            var outer = type.GetDeclaringType();
            return outer.IsNil ? Qualified(md.GetString(type.Namespace), md.GetString(type.Name)) : $"{Definition(md, outer)}/{md.GetString(type.Name)}";
        }

        public static string Reference(MetadataReader md, TypeReferenceHandle handle)
        {
            var type = md.GetTypeReference(handle);
            return type.ResolutionScope.Kind == HandleKind.TypeReference
                ? $"{Reference(md, (TypeReferenceHandle)type.ResolutionScope)}/{md.GetString(type.Name)}"
                : Qualified(md.GetString(type.Namespace), md.GetString(type.Name));
        }

        private static string Qualified(string ns, string name) => ns.Length == 0 ? name : $"{ns}.{name}";

        public string GetArrayType(string elementType, ArrayShape shape) => $"{elementType}[{new string(',', shape.Rank - 1)}]";
        public string GetByReferenceType(string elementType) => $"{elementType}&";
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";
        public string GetGenericMethodParameter(object? genericContext, int index) => $"!!{index}";
        public string GetGenericTypeParameter(object? genericContext, int index) => $"!{index}";
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetPinnedType(string elementType) => elementType;
        public string GetPointerType(string elementType) => $"{elementType}*";
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => $"{elementType}[]";
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => Definition(reader, handle);
        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => Reference(reader, handle);
        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) => "(type specification)";
    }
}
