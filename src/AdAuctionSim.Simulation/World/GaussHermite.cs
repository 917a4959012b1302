namespace AdAuctionSim.Simulation.World;

/// <summary>Gauss–Hermite quadrature for expectations over a standard normal variable.</summary>
internal static class GaussHermite
{
    /// <summary>
    /// Nodes and weights with Σ w_j f(x_j) ≈ E[f(ε)], ε ~ N(0, 1), exact for polynomials of degree below 2n. The nodes of
    /// the physicists' rule (weight e^{−x²}) are found by Newton's method on the orthonormal Hermite recurrence
    /// (Press et al., Numerical Recipes, §4.6 "gauher"), then scaled by √2 and the weights by 1/√π.
    /// </summary>
    public static (double[] Nodes, double[] Weights) Standard(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, 200);
        const double piToMinusQuarter = 0.7511255444649425;
        var x = new double[n];
        var w = new double[n];
        var z = 0.0;
        for (var i = 0; i < (n + 1) / 2; i++)
        {
            z = i switch
            {
                0 => Math.Sqrt(2.0 * n + 1) - (1.85575 * Math.Pow(2.0 * n + 1, -0.16667)),
                1 => z - (1.14 * Math.Pow(n, 0.426) / z),
                2 => (1.86 * z) - (0.86 * x[0]),
                3 => (1.91 * z) - (0.91 * x[1]),
                _ => (2.0 * z) - x[i - 2],
            };
            var derivative = 0.0;
            for (var iteration = 0; iteration < 100; iteration++)
            {
                double p1 = piToMinusQuarter, p2 = 0;
                for (var j = 0; j < n; j++)
                {
                    var p3 = p2;
                    p2 = p1;
                    p1 = (z * Math.Sqrt(2.0 / (j + 1)) * p2) - (Math.Sqrt(j / (j + 1.0)) * p3);
                }
                derivative = Math.Sqrt(2.0 * n) * p2;
                var previous = z;
                z = previous - (p1 / derivative);
                if (Math.Abs(z - previous) <= 1e-15 * Math.Max(1, Math.Abs(z)))
                {
                    break;
                }
            }
            x[i] = z;
            x[n - 1 - i] = -z;
            w[i] = w[n - 1 - i] = 2.0 / (derivative * derivative);
        }
        var nodes = new double[n];
        var weights = new double[n];
        for (var i = 0; i < n; i++)
        {
            nodes[i] = Math.Sqrt(2) * x[n - 1 - i];
            weights[i] = w[n - 1 - i] / Math.Sqrt(Math.PI);
        }
        return (nodes, weights);
    }
}
